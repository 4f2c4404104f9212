"""A Redis master SIGKILLed under load, on Sentinel and on Cluster.

On Sentinel, the master first loses its replicas for 0.1 s (a network blip)
and then crashes, so that asynchronous replication loses writes and the test
sees them counted; on Cluster it just crashes.

Client threads hammer two SessionMiddleware apps (one store without, one
with ``wait_replicas=1``) while the master dies; ``failover_load`` accounts
for every response. Asserted: no 500, no false 200 (a write acknowledged
after the kill and lost), service back on the promoted replica without a new
app or store, and with ``wait_replicas=1`` no acknowledged write lost at all.
The figures are printed (``pytest -s``); ``bench/redis_failover.py`` repeats
them.

Each test starts its own deployment with two replicas per master (so that the
promoted master still has a replica to acknowledge ``wait_replicas=1``), and
stops it by pid.
"""

from __future__ import annotations

import logging
import typing as t

import pytest

redis = pytest.importorskip("redis")

from redis.crc import key_slot  # noqa: E402

import failover_load  # noqa: E402
import redis_servers  # noqa: E402
from wsgi_sessions.stores.redis import RedisStore  # noqa: E402

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@pytest.fixture
def deploy(service_unavailable: Callable[[str], t.NoReturn]) -> Iterator[Callable[..., t.Any]]:
    started: list[t.Any] = []

    def deploy(kind: type[t.Any], **options: t.Any) -> t.Any:
        try:
            deployment = kind(**options)
        except redis_servers.Unavailable as exc:
            service_unavailable(f"no Redis deployment for the failover test: {exc}")
        started.append(deployment)
        return deployment

    yield deploy
    for deployment in started:
        deployment.stop()


def _check(reports: list[failover_load.GroupReport]) -> None:
    for report in reports:
        print(report.line())
    for report in reports:
        assert set(report.statuses) <= {"200", "503"}, report.line()  # never a 500
        assert report.false_200 == 0, report.line()
        assert report.recovered is not None, report.line()  # the same apps serve again
        assert report.checked > 100, report.line()
    # The master really went away (on a Cluster, for the sessions it served).
    assert sum(report.statuses["503"] for report in reports) > 0
    waited = next(r for r in reports if r.name == "wait_replicas=1")
    assert waited.lost_before_kill == 0, waited.line()


def _apps(url: str) -> tuple[dict[str, t.Any], list[RedisStore]]:
    stores = [
        RedisStore(f"{url}?prefix=a:"),
        RedisStore(f"{url}?prefix=w:&wait_replicas=1"),
    ]
    apps = {
        "async": failover_load.counter_app(stores[0]),
        "wait_replicas=1": failover_load.counter_app(stores[1]),
    }
    return apps, stores


def test_a_sentinel_master_cut_off_and_killed_under_load(
    deploy: Callable[..., t.Any], caplog: pytest.LogCaptureFixture
) -> None:
    sentinels = deploy(redis_servers.Sentinels, replicas=2, failover=True)
    old_master = sentinels.master.port
    apps, stores = _apps(sentinels.url())
    with caplog.at_level(logging.CRITICAL, logger="wsgi_sessions"):  # a traceback per 503
        reports = failover_load.run_failover(
            apps, lambda _: sentinels.cut_replication_and_kill(window=0.1)
        )
    _check(reports)
    # The replicas were cut off for the last 0.1 s before the crash: the async
    # store acknowledged writes that the promoted replica never had, and the
    # accounting sees it (a client reads an older value after a 200).
    plain = next(r for r in reports if r.name == "async")
    assert plain.lost_before_kill > 0, plain.line()
    assert sentinels.master_port() in {replica.port for replica in sentinels.replicas}
    assert sentinels.master_port() != old_master
    for store in stores:
        store.close()


def test_a_cluster_master_killed_under_load(
    deploy: Callable[..., t.Any], caplog: pytest.LogCaptureFixture
) -> None:
    cluster = deploy(redis_servers.Cluster, masters=3, replicas=2)
    apps, stores = _apps(cluster.url())
    killed: list[tuple[int, int]] = []

    def kill(families: dict[str, list[str]]) -> None:
        # A master serving clients of both groups (if one does).
        victim = cluster.master_for(families)
        slots = [key_slot(f.encode()) for group in families.values() for f in group]
        killed.append((next(s for s in slots if cluster.node_of_slot(s) is victim), victim.port))
        victim.kill()

    with caplog.at_level(logging.CRITICAL, logger="wsgi_sessions"):
        reports = failover_load.run_failover(apps, kill)
    _check(reports)
    slot, old_master = killed[0]
    assert cluster.node_of_slot(slot).port != old_master  # a replica took its slots
    for store in stores:
        store.close()
