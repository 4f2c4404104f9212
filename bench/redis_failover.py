"""Redis Sentinel and Cluster: a master killed under load, and what WAIT costs.

    pip install -e '.[bench,test]'
    python bench/redis_failover.py            # about a minute; --rounds 3 for medians

Starts its own deployments on spare loopback ports (tests/redis_servers.py:
a master, two replicas and three Sentinels; a Cluster of three masters with
two replicas each; down after 1 s of silence), and stops them by pid. Two
replicas, so that after the failover the new master still has one to
acknowledge writes with ``wait_replicas=1``.

1. WAIT cost: one session write (``apply``) and one read-and-write request
   through SessionMiddleware, with and without ``wait_replicas=1``,
   interleaved, median per round, then the median of the rounds.
2. Failover: clients hammer two SessionMiddleware apps (one store without,
   one with ``wait_replicas=1``) while the master is SIGKILLed
   (tests/failover_load.py says what is counted): a Sentinel master; a
   Sentinel master that lost its replicas 0.1 s before (a network blip, so
   that asynchronous replication loses acknowledged writes); a Cluster master.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the deployments and the load are the tests' own

from redis.crc import key_slot  # noqa: E402
from werkzeug.test import Client  # noqa: E402

from failover_load import counter_app, run_failover  # noqa: E402
from redis_servers import Cluster, Sentinels  # noqa: E402
from wsgi_sessions.stores.redis import RedisStore  # noqa: E402


def _time_calls(call: object, count: int) -> float:
    assert callable(call)
    started = time.perf_counter()
    for _ in range(count):
        call()
    return (time.perf_counter() - started) / count * 1e6


def wait_cost(url: str, label: str, rounds: int, count: int) -> None:
    plain, waiting = RedisStore(url), RedisStore(f"{url}?wait_replicas=1")
    key = "{benchwait}record"
    plain.create(key, {"n": "0"}, 600)
    clients = {
        "plain": Client(counter_app(plain)),
        "wait": Client(counter_app(waiting)),
    }
    calls = {
        "apply plain": lambda: plain.apply(key, {"n": "1"}, []),
        "apply wait": lambda: waiting.apply(key, {"n": "2"}, []),
        "request plain": lambda: clients["plain"].get("/?n=1"),
        "request wait": lambda: clients["wait"].get("/?n=1"),
    }
    results: dict[str, list[float]] = {name: [] for name in calls}
    order = list(calls.items())
    for _ in range(rounds):
        order.reverse()  # alternate, so that drift on a busy machine falls on both alike
        for name, call in order:
            results[name].append(_time_calls(call, count))
    medians = {name: statistics.median(values) for name, values in results.items()}
    for what in ("apply", "request"):
        base, wait = medians[f"{what} plain"], medians[f"{what} wait"]
        print(
            f"  {label} {what:8} plain {base:7.0f} µs   wait_replicas=1 {wait:7.0f} µs"
            f"   x{wait / base:.2f} (+{wait - base:.0f} µs)"
        )
    plain.end(key)
    plain.close()
    waiting.close()


def failover(kind: str, clients: int, blip: bool = False) -> None:
    if kind == "sentinel":
        deployment: Sentinels | Cluster = Sentinels(replicas=2, failover=True)
    else:
        deployment = Cluster(masters=3, replicas=2)
    try:
        url = deployment.url()
        stores = {
            "async": RedisStore(f"{url}?prefix=a:"),
            "wait_replicas=1": RedisStore(f"{url}?prefix=w:&wait_replicas=1"),
        }
        apps = {name: counter_app(store) for name, store in stores.items()}

        def kill(families: dict[str, list[str]]) -> None:
            if isinstance(deployment, Sentinels):
                if blip:
                    deployment.cut_replication_and_kill(window=0.1)
                    print(f"  {kind}: replicas cut off for 0.1 s, then the master killed")
                else:
                    deployment.master.kill()
                    print(f"  {kind}: killed the master (port {deployment.master.port})")
                return
            victim = deployment.master_for(families)
            hit = {
                name: sum(deployment.node_of_slot(key_slot(f.encode())) is victim for f in group)
                for name, group in families.items()
            }
            victim.kill()
            print(f"  {kind}: killed a master (port {victim.port}), serving the sessions of {hit}")

        for report in run_failover(apps, kill, clients=clients):
            print(f"  {report.line()}")
        for store in stores.values():
            store.close()
    finally:
        deployment.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=1, help="failovers per kind")
    parser.add_argument("--clients", type=int, default=4, help="clients per group")
    parser.add_argument("--count", type=int, default=300, help="calls per WAIT-cost round")
    parser.add_argument("--only", choices=("wait", "sentinel", "cluster"), help="one part")
    args = parser.parse_args()
    # Each 503 logs the store's error with its traceback; the figures say enough.
    logging.getLogger("wsgi_sessions").setLevel(logging.CRITICAL)

    if args.only in (None, "wait"):
        measure_wait(args.count)
    for kind, blip in (("sentinel", False), ("sentinel", True), ("cluster", False)):
        if args.only not in (None, kind):
            continue
        for round_ in range(args.rounds):
            what = "a replication blip, then a crash" if blip else "a crash"
            print(f"Failover, {kind}, {what}, round {round_ + 1}")
            failover(kind, args.clients, blip)


def measure_wait(count: int) -> None:
    print("WAIT cost (median of 15 interleaved rounds)")
    sentinels = Sentinels()
    try:
        wait_cost(sentinels.url(), "sentinel", 15, count)
    finally:
        sentinels.stop()
    cluster = Cluster(masters=3, replicas=1)
    try:
        wait_cost(cluster.url(), "cluster ", 15, count)
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
