#!/usr/bin/env python3
# A DNS upstream that truncates every UDP answer (TC, no records) and answers over TCP with 40 A
# records, as a real resolver does for big answers; and a client that queries over UDP or TCP.
#
#   dns_truncating_upstream.py serve ADDRESS PORT LOG   (one line "udp NAME" / "tcp NAME" per query)
#   dns_truncating_upstream.py query SERVER PORT NAME udp|tcp [UDP_BUFFER]
#       prints "rcode=R tc=0|1 a=N" (N: A records in the answer section)
import socket
import struct
import sys
import threading

RECORDS = 40


def parse_question(msg):
    """(id, name, question bytes) of a query."""
    (qid,) = struct.unpack("!H", msg[:2])
    pos, labels = 12, []
    while msg[pos]:
        labels.append(msg[pos + 1 : pos + 1 + msg[pos]].decode())
        pos += 1 + msg[pos]
    end = pos + 5  # the root label, type and class
    return qid, ".".join(labels), msg[12:end]


def answer(query, truncated):
    qid, _, question = parse_question(query)
    flags = 0x8180 | (0x0200 if truncated else 0)  # QR, RD, RA (+ TC)
    count = 0 if truncated else RECORDS
    out = struct.pack("!HHHHHH", qid, flags, 1, count, 0, 0) + question
    for i in range(count):
        out += struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + bytes([198, 51, 100, i + 1])
    return out


def serve(address, port, log_path):
    log = open(log_path, "a", buffering=1)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((address, port))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((address, port))
    tcp.listen(8)

    def serve_tcp():
        while True:
            conn, _ = tcp.accept()
            with conn:
                query = read_framed(conn)
                if query:
                    log.write("tcp %s\n" % parse_question(query)[1])
                    reply = answer(query, truncated=False)
                    conn.sendall(struct.pack("!H", len(reply)) + reply)

    threading.Thread(target=serve_tcp, daemon=True).start()
    while True:
        query, peer = udp.recvfrom(4096)
        log.write("udp %s\n" % parse_question(query)[1])
        udp.sendto(answer(query, truncated=True), peer)


def read_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            return b""
        data += chunk
    return data


def read_framed(conn):
    length = read_exact(conn, 2)
    return read_exact(conn, struct.unpack("!H", length)[0]) if length else b""


def skip_name(msg, pos):
    while True:
        if msg[pos] >= 0xC0:
            return pos + 2
        if msg[pos] == 0:
            return pos + 1
        pos += 1 + msg[pos]


def query(server, port, name, transport, udp_buffer):
    q = struct.pack("!HHHHHH", 0x4242, 0x0100, 1, 0, 0, 1 if udp_buffer else 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack("!HH", 1, 1)
    if udp_buffer:
        q += b"\0" + struct.pack("!HHIH", 41, udp_buffer, 0, 0)  # EDNS0 OPT: the buffer size
    if transport == "tcp":
        with socket.create_connection((server, port), timeout=10) as conn:
            conn.sendall(struct.pack("!H", len(q)) + q)
            msg = read_framed(conn)
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(10)
        s.sendto(q, (server, port))
        msg = s.recv(65535)
    _, flags, qd, an = struct.unpack("!HHHH", msg[:8])
    pos = 12
    for _ in range(qd):
        pos = skip_name(msg, pos) + 4
    a = 0
    for _ in range(an):
        pos = skip_name(msg, pos)
        rtype, _, _, rdlen = struct.unpack("!HHIH", msg[pos : pos + 10])
        a += rtype == 1
        pos += 10 + rdlen
    print("rcode=%d tc=%d a=%d" % (flags & 0xF, (flags >> 9) & 1, a))


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        buffer = int(sys.argv[6]) if len(sys.argv) > 6 else 0
        query(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], buffer)
