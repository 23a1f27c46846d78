#!/usr/bin/env python3
# A minimal WebSocket (RFC 6455) echo server and client for e2e_ingress: enough of the protocol to
# prove that an Upgrade through the Ingress proxy reaches the backend and bytes flow both ways.
#
#   ws_echo.py serve ADDRESS PORT        answers upgrades: sends "hello from the backend", then
#                                        echoes each text frame back as "echo: <text>"
#   ws_echo.py client ADDRESS PORT HOST TEXT
#                                        upgrades (Host: HOST), checks the 101 and its accept key,
#                                        prints the greeting and the echo of TEXT; exit 1 on error
import base64
import hashlib
import os
import socket
import sys
import threading

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(key):
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def read_head(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1)
        if not chunk:
            raise EOFError("connection closed in the HTTP head")
        data += chunk
    lines = data.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return lines[0], headers


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("connection closed in a frame")
        data += chunk
    return data


def send_frame(sock, text, mask):
    payload = text.encode()
    assert len(payload) < 126
    header = bytes([0x81, (0x80 if mask else 0) | len(payload)])
    if mask:
        key = os.urandom(4)
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        header += key
    sock.sendall(header + payload)


def recv_frame(sock):
    first, second = recv_exact(sock, 2)
    length = second & 0x7F
    if length >= 126:
        raise ValueError("long frames are not needed here")
    key = recv_exact(sock, 4) if second & 0x80 else None
    payload = recv_exact(sock, length)
    if key:
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return first & 0x0F, payload.decode()


def serve_one(conn):
    with conn:
        _, headers = read_head(conn)
        if headers.get("upgrade", "").lower() != "websocket":
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            return
        conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n" %
                      accept_key(headers["sec-websocket-key"])).encode())
        send_frame(conn, "hello from the backend", False)
        while True:
            opcode, text = recv_frame(conn)
            if opcode == 8:  # close
                return
            send_frame(conn, "echo: " + text, False)


def serve(address, port):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((address, port))
    listener.listen(16)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=lambda c=conn: _quiet(serve_one, c), daemon=True).start()


def _quiet(fn, *args):
    try:
        fn(*args)
    except (OSError, EOFError, ValueError, KeyError) as e:
        print("connection ended: %s" % e, flush=True)


def client(address, port, host, text):
    sock = socket.create_connection((address, port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(("GET /chat HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" %
                  (host, key)).encode())
    status, headers = read_head(sock)
    if " 101 " not in status + " ":
        print("no upgrade: %s" % status)
        return 1
    if headers.get("sec-websocket-accept") != accept_key(key):
        print("wrong Sec-WebSocket-Accept: %s" % headers.get("sec-websocket-accept"))
        return 1
    _, greeting = recv_frame(sock)
    print(greeting)
    send_frame(sock, text, True)
    _, echo = recv_frame(sock)
    print(echo)
    sock.sendall(bytes([0x88, 0x80]) + os.urandom(4))  # close, masked, no payload
    sock.close()
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        try:
            sys.exit(client(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]))
        except (OSError, EOFError, ValueError) as e:
            print("failed: %s" % e)
            sys.exit(1)
