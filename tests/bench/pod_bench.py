#!/usr/bin/python3
# pod_bench's measuring half: creates pods bound to a node and times each from its create request
# to the moment a watch shows it Ready; prints p50/p99 per round. Used by pod_bench.sh.
import argparse
import subprocess
import threading
import time

from kubernetes import client, config, watch


def pod(name, node, image):
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"bench": "pod"}},
        "spec": {"nodeName": node, "terminationGracePeriodSeconds": 0,
                 "containers": [{"name": "c", "image": image, "imagePullPolicy": "IfNotPresent",
                                 "command": ["sleep", "3600"]}]},
    }


def ready(p):
    for c in (p.status.conditions or []) if p.status else []:
        if c.type == "Ready" and c.status == "True":
            return True
    return False


def round_(api, ns, node, image, prefix, count, times=None):
    sent = {}
    done = {}
    lock = threading.Lock()
    all_ready = threading.Event()
    start_watch = api.list_namespaced_pod(ns, label_selector="bench=pod").metadata.resource_version

    def watcher():
        w = watch.Watch()
        for ev in w.stream(api.list_namespaced_pod, ns, label_selector="bench=pod",
                           resource_version=start_watch, timeout_seconds=300):
            p = ev["object"]
            name = p.metadata.name
            if name.startswith(prefix) and name not in done and ready(p):
                with lock:
                    done[name] = time.monotonic()
                    if len(done) == count:
                        all_ready.set()
                        w.stop()

    t = threading.Thread(target=watcher, daemon=True)
    t.start()
    time.sleep(0.2)  # the watch is open before the first create

    def create(i):
        name = f"{prefix}{i}"
        with lock:
            sent[name] = time.monotonic()
        api.create_namespaced_pod(ns, pod(name, node, image))

    creators = [threading.Thread(target=create, args=(i,)) for i in range(count)]
    for c in creators:
        c.start()
    for c in creators:
        c.join()
    if not all_ready.wait(300):
        raise SystemExit(f"only {len(done)} of {count} pods became Ready")
    if times is not None:
        # Wall-clock times, to line up with the agent's log.
        offset = time.time() - time.monotonic()
        for n in sorted(done, key=lambda n: sent[n]):
            times.write(f"{n} {sent[n] + offset:.3f} {done[n] + offset:.3f} "
                        f"{(done[n] - sent[n]) * 1000:.0f}\n")
    return sorted(done[n] - sent[n] for n in done)


def pct(values, p):
    k = max(0, min(len(values) - 1, int(round(p / 100.0 * len(values) + 0.5)) - 1))
    return values[k]


def delete_all(api, ns):
    api.delete_collection_namespaced_pod(ns, label_selector="bench=pod", grace_period_seconds=0)
    while api.list_namespaced_pod(ns, label_selector="bench=pod").items:
        time.sleep(0.5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--node", required=True)
    ap.add_argument("--image", default="orch.test/busybox:1")
    ap.add_argument("--singles", type=int, default=10, help="1-pod rounds")
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--times", default="", help="file for each pod's create and Ready times")
    ap.add_argument("--rss-hook", default="", help="command printing RSS, run with the batch up")
    ap.add_argument("--rss-hook-later", default="",
                    help="command printing RSS, run 45 s after the batch is Ready")
    ap.add_argument("--before-batch-hook", default="",
                    help="command run right before the batch is created (a CPU snapshot)")
    ap.add_argument("--after-batch-hook", default="",
                    help="command run as soon as the batch is Ready (the CPU used meanwhile)")
    args = ap.parse_args()
    config.load_kube_config(args.kubeconfig)
    api = client.CoreV1Api()
    ns = "default"
    times = open(args.times, "w") if args.times else None

    singles = []
    for r in range(args.singles):
        singles += round_(api, ns, args.node, args.image, f"single{r}-", 1, times)
        delete_all(api, ns)
    singles.sort()
    print(f"1 pod  ({args.singles} rounds): p50 {pct(singles, 50)*1000:.0f} ms, "
          f"p99 {pct(singles, 99)*1000:.0f} ms, max {singles[-1]*1000:.0f} ms", flush=True)
    if args.before_batch_hook:
        subprocess.run(args.before_batch_hook, shell=True, executable="/bin/bash", check=False)
    batch = round_(api, ns, args.node, args.image, "batch-", args.batch, times)
    print(f"{args.batch} pods at once: p50 {pct(batch, 50)*1000:.0f} ms, "
          f"p99 {pct(batch, 99)*1000:.0f} ms, all Ready after {batch[-1]*1000:.0f} ms", flush=True)
    if args.after_batch_hook:
        subprocess.run(args.after_batch_hook, shell=True, executable="/bin/bash", check=False)
    if args.rss_hook:
        time.sleep(5)
        subprocess.run(args.rss_hook, shell=True, executable="/bin/bash", check=False)
    if args.rss_hook_later:
        time.sleep(40)
        subprocess.run(args.rss_hook_later, shell=True, executable="/bin/bash", check=False)
    delete_all(api, ns)


if __name__ == "__main__":
    main()
