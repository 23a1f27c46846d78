#!/usr/bin/python3
# net_bench's API-driven half (run by net_bench.sh inside the node's network namespace): times
# Endpoints changes until a connection through the ClusterIP shows them, and creates many
# selector-less Services with Endpoints quickly.
import argparse
import concurrent.futures
import socket
import time

from kubernetes import client, config

NS = "default"


def api_client(kubeconfig, threads=4):
    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    cfg.connection_pool_maxsize = max(4, threads)
    return client.CoreV1Api(client.ApiClient(cfg))


def connects(ip, port):
    """True when a TCP connection through the ClusterIP succeeds, False when it is refused (the
    proxy's REJECT rule of a Service without endpoints), None on anything else."""
    s = socket.socket()
    s.settimeout(0.5)
    try:
        s.connect((ip, port))
        return True
    except ConnectionRefusedError:
        return False
    except OSError:
        return None
    finally:
        s.close()


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(p * (len(v) - 1) + 0.5))] if v else float("nan")


def latency(args):
    api = api_client(args.kubeconfig)
    name = args.service
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
           "spec": {"ports": [{"port": 80, "protocol": "TCP"}]}}
    try:
        api.create_namespaced_service(NS, svc)
    except client.ApiException as e:
        if e.status != 409:
            raise
    ip = api.read_namespaced_service(name, NS).spec.cluster_ip
    ep_ip, ep_port = args.endpoint.split(":")
    live = [{"addresses": [{"ip": ep_ip}], "ports": [{"port": int(ep_port), "protocol": "TCP"}]}]
    try:
        api.create_namespaced_endpoints(
            NS, {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name}, "subsets": []})
    except client.ApiException as e:
        if e.status != 409:
            raise

    def set_subsets(subsets):
        api.patch_namespaced_endpoints(name, NS, [{"op": "add", "path": "/subsets", "value": subsets}])

    def wait_state(want, t0, limit=30.0):
        while time.monotonic() - t0 < limit:
            if connects(ip, 80) is want:
                return time.monotonic() - t0
            time.sleep(0.002)
        raise SystemExit(f"{name}: connection state {want} not reached in {limit} s")

    # The starting state: no endpoints, refused.
    set_subsets([])
    wait_state(False, time.monotonic())
    added, removed = [], []
    for _ in range(args.changes):
        time.sleep(args.gap)
        t0 = time.monotonic()
        set_subsets(live)
        added.append(wait_state(True, t0))
        time.sleep(args.gap)
        t0 = time.monotonic()
        set_subsets([])
        removed.append(wait_state(False, t0))
    for what, values in (("endpoint added -> ClusterIP connects", added),
                         ("endpoint removed -> ClusterIP refuses", removed)):
        ms = [v * 1000 for v in values]
        print(f"{args.label}{what}: n={len(ms)} p50 {pct(ms, 0.5):.0f} ms p99 {pct(ms, 0.99):.0f} ms"
              f" min {min(ms):.0f} ms max {max(ms):.0f} ms", flush=True)


def populate(args):
    api = api_client(args.kubeconfig, args.threads)

    def one(i):
        name = f"bench-{i}"
        api.create_namespaced_service(NS, {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": {"bench": "net"}},
            "spec": {"ports": [{"port": 80, "protocol": "TCP"}]}})
        addresses = []
        for j in range(args.endpoints):
            k = i * args.endpoints + j
            addresses.append({"ip": f"10.250.{k // 250}.{k % 250 + 1}"})
        api.create_namespaced_endpoints(NS, {
            "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "labels": {"bench": "net"}},
            "subsets": [{"addresses": addresses, "ports": [{"port": 8080, "protocol": "TCP"}]}]})

    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(args.threads) as pool:
        for f in [pool.submit(one, i) for i in range(args.services)]:
            f.result()
    took = time.monotonic() - t0
    print(f"created {args.services} Services and Endpoints with {args.endpoints} addresses each in "
          f"{took:.1f} s ({2 * args.services / took:.0f} objects/s)", flush=True)


def touch(args):
    """Adds one address to one of the populated Services' Endpoints: a one-Service change."""
    api = api_client(args.kubeconfig)
    ep = api.read_namespaced_endpoints(args.service, NS)
    addresses = ep.subsets[0].addresses
    api.patch_namespaced_endpoints(args.service, NS, [
        {"op": "add", "path": "/subsets/0/addresses/-", "value": {"ip": f"10.251.0.{len(addresses)}"}}])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--kubeconfig", required=True)
    sub = p.add_subparsers(dest="cmd", required=True)
    lat = sub.add_parser("latency")
    lat.add_argument("--service", default="probe")
    lat.add_argument("--endpoint", required=True, help="IP:PORT of a serving pod")
    lat.add_argument("--changes", type=int, default=20)
    lat.add_argument("--gap", type=float, default=1.2, help="seconds between changes")
    lat.add_argument("--label", default="")
    pop = sub.add_parser("populate")
    pop.add_argument("--services", type=int, default=1000)
    pop.add_argument("--endpoints", type=int, default=10)
    pop.add_argument("--threads", type=int, default=8)
    t = sub.add_parser("touch")
    t.add_argument("--service", default="bench-0")
    args = p.parse_args()
    {"latency": latency, "populate": populate, "touch": touch}[args.cmd](args)


if __name__ == "__main__":
    main()
