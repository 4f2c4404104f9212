"""Redis key-count sweep: ours against Flask-Session and Beaker ext:redis.

For sessions of 5, 50 and 500 keys of realistic values (nested dicts and
lists, strings, numbers, one datetime), two requests, each one WSGI call
(no HTTP), built with bench/server.py's helpers:

- read: a valid cookie; the app reads one key.
- read all: the same cookie; the app reads every value (``items()``).
- write: the same cookie; the app writes one key without reading it.

Reported per request: wall time, client CPU time (``time.process_time``,
steadier than wall time on a shared machine: it leaves out the wait for
Redis), the bytes sent to and received from Redis and the commands run
from ``INFO stats`` deltas (``total_net_input_bytes`` /
``total_net_output_bytes``) minus what the ``INFO`` calls themselves cost,
and the round trips (counted where redis-py sends a request; a script is
one, however many commands it runs inside).
Each round also times one redis-py ``PING``: a round trip on this machine,
so that each contender's wall time splits into its round trips and its own
work ("outside"), and the report says how much own work a 2x lead would
leave ours at 5 and 50 keys. Those counters are server-wide: another
client of the same Redis inflates them, so each figure is the median of
several rounds. Every contender, size and request is timed once per round,
round-robin; medians over rounds; ratios are the better peer's figure over
ours (higher = we are faster).

Run::

    python bench/redis_sweep.py    # WSGI_SESSIONS_REDIS_URL or redis://127.0.0.1:6379/15

Keys it writes carry a prefix unique to the run (Beaker's, which has no
prefix, are recorded as they are written) and are deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import typing as t
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import redis
from harness import call_wsgi, make_environ
from redis.connection import AbstractConnection
from server import App, RedisCounter, beaker, flask_session, ours, seed_cookie

from wsgi_sessions.stores.redis import RedisStore

SIZES = (5, 50, 500)
REQUESTS = ("read", "read all", "write")
PATHS = {"read": "/S1", "read all": "/all", "write": "/S2"}
PEERS = ("flask-session", "beaker ext:redis")
DEFAULT_URL = os.environ.get("WSGI_SESSIONS_REDIS_URL", "redis://127.0.0.1:6379/15")


def realistic(count: int) -> dict[str, t.Any]:
    """``count`` keys (with the ``k1`` the app reads) of the values a web
    session holds: small records, lists of them, strings, numbers, one datetime."""
    values: dict[str, t.Any] = {"k0": datetime(2024, 2, 29, 23, 59, 58, tzinfo=timezone.utc)}
    for i in range(1, count):
        kind = i % 4
        if kind == 0:
            value: t.Any = {
                "id": i,
                "name": f"item {i}",
                "tags": ["a", "b", str(i)],
                "price": i * 1.25,
            }
        elif kind == 1:
            value = [i, i + 1, {"nested": [True, None, "x" * 10]}]
        elif kind == 2:
            value = f"a string value number {i}, with some text"
        else:
            value = i * 7
        values[f"k{i}"] = value
    return values


class Traffic:
    """Bytes in and out of Redis per call, from INFO stats deltas, and round trips
    per call, counted where redis-py (which every contender uses) sends."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        before = self._read()
        after = self._read()
        # What one INFO costs in each direction (its request and its reply).
        self.overhead = (after[0] - before[0], after[1] - before[1])

    def _read(self) -> tuple[int, int]:
        stats = self.client.info("stats")
        return int(stats["total_net_input_bytes"]), int(stats["total_net_output_bytes"])

    def per_call(self, func: Callable[[], object], number: int) -> tuple[float, float, float]:
        """Bytes sent, bytes received and round trips per call of ``func``."""
        sends = 0
        send = AbstractConnection.send_packed_command

        def counted(connection: t.Any, *args: t.Any, **kwargs: t.Any) -> t.Any:
            nonlocal sends
            sends += 1  # one request on the wire (a pipeline's too): one round trip
            return send(connection, *args, **kwargs)

        before = self._read()
        AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]
        try:
            for _ in range(number):
                func()
        finally:
            AbstractConnection.send_packed_command = send  # type: ignore[method-assign]
        after = self._read()
        sent = after[0] - before[0] - self.overhead[0]
        received = after[1] - before[1] - self.overhead[1]
        return sent / number, received / number, sends / number


def one_request(app: App, environ: dict[str, t.Any]) -> Callable[[], None]:
    return lambda: call_wsgi(app, environ)


def timed(func: Callable[[], object], number: int) -> tuple[float, float]:
    """Microseconds per call: wall, client CPU."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(number):
        func()
    return (
        (time.perf_counter() - wall) / number * 1e6,
        (time.process_time() - cpu) / number * 1e6,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=7, help="round-robin rounds (median)")
    parser.add_argument("--number", type=int, default=100, help="requests per measurement")
    parser.add_argument(
        "--redis-url",
        default=DEFAULT_URL,
    )
    args = parser.parse_args()
    counter = RedisCounter()  # records Beaker's keys, to delete them
    prefix = f"wsgi_sessions_bench:{uuid.uuid4().hex}:"
    client = redis.Redis.from_url(args.redis_url, socket_timeout=2, socket_connect_timeout=2)
    client.ping()
    traffic = Traffic(client)
    calls: dict[tuple[str, int, str], Callable[[], None]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            for size in SIZES:
                seed = realistic(size)
                apps: dict[str, App] = {
                    "ours": ours(RedisStore(client, prefix=f"{prefix}{size}:"), seed),
                    "flask-session": flask_session(client, f"{prefix}fs{size}:", seed),
                    "beaker ext:redis": beaker("ext:redis", Path(tmp_name), args.redis_url, seed),
                }
                for name, app in apps.items():
                    cookie = seed_cookie(app, "session")
                    for request in REQUESTS:
                        environ = make_environ(PATHS[request], cookie)
                        call_wsgi(app, environ)  # warm up: scripts, connections
                        calls[(name, size, request)] = one_request(app, environ)
            samples: dict[tuple[str, int, str], list[tuple[float, ...]]] = {}
            pings: list[float] = []
            for round_ in range(args.rounds):
                pings.append(timed(client.ping, args.number)[0])
                for key, call in calls.items():
                    wall, cpu = timed(call, args.number)
                    sent, received, commands = traffic.per_call(call, 10)
                    samples.setdefault(key, []).append((wall, cpu, sent, received, commands))
                print(f"  round {round_ + 1}/{args.rounds}", file=sys.stderr)
    finally:
        keys = list(client.scan_iter(match=prefix + "*", count=1000)) + sorted(counter.beaker_keys)
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    medians = {
        key: tuple(statistics.median(sample[i] for sample in runs) for i in range(5))
        for key, runs in samples.items()
    }
    url = "" if args.redis_url == DEFAULT_URL else f" --redis-url {args.redis_url}"
    rounds = f"--rounds {args.rounds} --number {args.number}"
    print(f"command: python bench/redis_sweep.py {rounds}{url}")
    report(medians, statistics.median(pings))


def report(medians: dict[tuple[str, int, str], tuple[float, ...]], ping: float) -> None:
    print()
    print(
        f"One round trip (redis-py PING, wall, median): {ping:.0f} µs. "
        "'Outside' = wall - round trips * that: the contender's own work."
    )
    print()
    print(
        "| keys | request | contender | wall µs | client CPU µs | B to Redis | B from Redis "
        "| round trips | outside µs |"
    )
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|")
    for size in SIZES:
        for request in REQUESTS:
            for name in ("ours", *PEERS):
                wall, cpu, sent, received, commands = medians[(name, size, request)]
                print(
                    f"| {size} | {request} | {name} | {wall:.0f} | {cpu:.0f} "
                    f"| {sent:.0f} | {received:.0f} | {commands:.1f} "
                    f"| {wall - commands * ping:.0f} |"
                )
    print()
    print(
        "Better peer / ours (higher = we are faster; goal: read > 1 at 500 keys, "
        "read and write >= 2 at 5 and 50; read all: no goal):"
    )
    print("| keys | request | wall | client CPU | better peer (wall) |")
    print("|---:|---|---:|---:|---|")
    for size in SIZES:
        for request in REQUESTS:
            ours_wall, ours_cpu = medians[("ours", size, request)][:2]
            best = min(PEERS, key=lambda peer: medians[(peer, size, request)][0])
            best_cpu = min(medians[(peer, size, request)][1] for peer in PEERS)
            print(
                f"| {size} | {request} | {medians[(best, size, request)][0] / ours_wall:.2f} "
                f"| {best_cpu / ours_cpu:.2f} | {best} |"
            )
    print()
    print(
        "What 2x would leave ours for its own work (half the better peer's wall, "
        "less ours' round trips), against what it spends:"
    )
    print("| keys | request | budget µs | ours outside µs |")
    print("|---:|---|---:|---:|")
    for size in SIZES[:2]:
        for request in ("read", "write"):
            ours_wall, commands = (
                medians[("ours", size, request)][0],
                medians[("ours", size, request)][4],
            )
            best_wall = min(medians[(peer, size, request)][0] for peer in PEERS)
            budget = best_wall / 2 - commands * ping
            print(f"| {size} | {request} | {budget:.0f} | {ours_wall - commands * ping:.0f} |")


if __name__ == "__main__":
    main()
