"""Dask distributed side of benchmarks/peers: the same workloads as
main.go, measured the same way (one warm-up batch, then rounds of at
least -duration seconds each; the figure is the mean of the rounds'
rates). Prints one JSON object per line: name, value, unit.

Run by run.sh; on its own: /usr/bin/python3 peers_dask.py [--duration 1] [--rounds 3]
"""

import argparse
import gc
import json
import os
import time

import numpy as np
from dask.distributed import Client, LocalCluster


def noop(x):
    return x


def make_block(i):
    return np.full(10_000, float(i))


def block_sum(xs):
    return float(xs.sum())


class Counter:
    def __init__(self):
        self.n = 0

    def add(self, x):
        self.n += x
        return self.n


def rate(batch, duration, rounds):
    """Mean over rounds of ops/s; each round repeats batch until duration passed."""
    batch()  # warm up
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        n = 0
        while True:
            n += batch()
            elapsed = time.perf_counter() - start
            if elapsed >= duration:
                break
        rates.append(n / elapsed)
    return sum(rates) / len(rates)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=1.0, help="seconds per timed round")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per workload")
    ap.add_argument("--big-rounds", type=int, default=3, help="timed 1 GiB puts")
    args = ap.parse_args()
    ncpu = os.cpu_count()
    cluster = LocalCluster(n_workers=ncpu, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    client = Client(cluster)
    out = lambda name, v, unit: print(json.dumps({"name": name, "value": v, "unit": unit}), flush=True)
    d, r = args.duration, args.rounds

    def tasks_sync():
        for i in range(100):
            client.submit(noop, i, pure=False).result()
        return 100

    def tasks_async():
        futs = [client.submit(noop, i, pure=False) for i in range(1000)]
        client.gather(futs)
        return 1000

    out("tasks_sync", rate(tasks_sync, d, r), "tasks/s")
    out("tasks_async_1000", rate(tasks_async, d, r), "tasks/s")

    actor = client.submit(Counter, actor=True).result()

    def actor_sync():
        for _ in range(100):
            actor.add(1).result()
        return 100

    def actor_async():
        futs = [actor.add(1) for _ in range(1000)]
        for f in futs:
            f.result()
        return 1000

    out("actor_calls_sync", rate(actor_sync, d, r), "calls/s")
    out("actor_calls_async_1000", rate(actor_async, d, r), "calls/s")

    def puts():
        futs = [client.scatter(i, hash=False) for i in range(100)]
        del futs
        return 100

    out("put_small", rate(puts, d, r), "puts/s")
    small = client.scatter(42, hash=False)

    def gets():
        for _ in range(100):
            small.result()
        return 100

    out("get_small", rate(gets, d, r), "gets/s")

    def pipeline():
        stage1 = client.map(make_block, range(1000), pure=False)
        stage2 = client.map(block_sum, stage1, pure=False)
        client.gather(stage2)
        return 1

    out("pipeline_1000x2", rate(pipeline, d, r), "pipelines/s")

    # 1 GiB numpy array scattered to a worker, the future released between rounds.
    src = np.arange((1 << 30) // 8, dtype=np.float64)
    rates = []
    for i in range(args.big_rounds + 1):
        t0 = time.perf_counter()
        fut = client.scatter(src, hash=False)
        dt = time.perf_counter() - t0
        if i > 0:  # the first is the warm-up
            rates.append((1 << 30) / dt / 1e9)
        client.cancel(fut)
        del fut
        gc.collect()
        time.sleep(0.5)
    out("put_1GiB", sum(rates) / len(rates), "GB/s")
    client.close()
    cluster.close()


if __name__ == "__main__":
    main()
