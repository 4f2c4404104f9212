"""Redis Sentinel and Cluster: URLs, ready clients, hash slots, wait_replicas.

Against the session's own deployments (``redis_sentinels``: a master, a
replica and three Sentinels; ``redis_cluster``: three masters), from
``tests/redis_servers.py``. The shared store suite (contract, concurrency,
races) runs on both through ``store_pair``; the failover under load is in
``test_redis_failover.py``.
"""

from __future__ import annotations

import logging
import os
import signal
import typing as t
import uuid

import pytest
from werkzeug.test import Client

from wsgi_sessions import SessionMiddleware, SessionStoreError, get_session
from wsgi_sessions.stores import store_from_url

redis = pytest.importorskip("redis")

from redis.cluster import ClusterNode, RedisCluster  # noqa: E402
from redis.crc import key_slot  # noqa: E402
from redis.sentinel import Sentinel  # noqa: E402

from wsgi_sessions.stores.redis import RedisStore  # noqa: E402

SECRET = "redis ha test secret key, long enough 0123456789"


def _prefix() -> str:
    return f"t{uuid.uuid4().hex}:"


# -- URLs: parsed and refused without any server ---------------------------------------------


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis+sentinel://:hunter2@h1:26379,h2:26379", "service_name"),
        ("redis+sentinel://:hunter2@h1:26379/svc/zero", "database"),
        ("redis+sentinel://:hunter2@h1:26379/svc/0/extra", "service_name"),
        ("redis+sentinel://:hunter2@h1:port/svc", "host:port"),
        ("redis+sentinel://:hunter2@h1:26379,/svc", "host:port"),
        ("redis+sentinel://:hunter2@h1:26379/svc?prefx=a", "unknown query parameter 'prefx'"),
        ("redis+sentinel://:hunter2@h1:26379/svc?ssl_ca_certs=x", "unknown query parameter"),
        ("redis+cluster://:hunter2@h1:7000/3", "database 0"),
        ("redis+cluster://:hunter2@h1:7000?sentinel_password=x", "unknown query parameter"),
        ("redis+cluster://:hunter2@h1:7000?wait_replicas=one", "wait_replicas"),
        ("redis+cluster://:hunter2@h1:7000?socket_timeout=0", "socket_timeout"),
        ("redis+cluster://:hunter2@h1:7000?wait_timeout=-1", "wait_timeout"),
        ("redis+sentinel://:hunter2@h1:26379/svc?prefix=a&prefix=b", "twice"),
    ],
)
def test_a_bad_sentinel_or_cluster_url_is_refused_without_its_password(
    url: str, problem: str
) -> None:
    with pytest.raises(ValueError, match="setting 'store'") as info:
        store_from_url(url)
    assert problem in str(info.value)
    assert "hunter2" not in str(info.value)


def test_a_sentinel_url_configures_the_master_client_and_the_sentinels() -> None:
    store = RedisStore(
        "rediss+sentinel://app:s3cret@127.0.0.1:1,127.0.0.1:2/mymaster/3"
        "?prefix=p:&socket_timeout=0.75&sentinel_password=other&wait_replicas=1"
        "&wait_timeout=0.25&ssl_cert_reqs=none"
    )
    pool = store.client.connection_pool
    kwargs = pool.connection_kwargs
    assert pool.service_name == "mymaster"
    assert (kwargs["db"], kwargs["username"], kwargs["password"]) == (3, "app", "s3cret")
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (0.75, 2.0)
    assert kwargs["ssl_cert_reqs"] == "none"
    assert "SSL" in pool.connection_class.__name__  # TLS to the master
    sentinels = pool.sentinel_manager.sentinels
    assert [s.connection_pool.connection_kwargs["port"] for s in sentinels] == [1, 2]
    first = sentinels[0].connection_pool
    assert first.connection_kwargs["password"] == "other"
    assert first.connection_kwargs["socket_timeout"] == 0.75
    assert "SSL" in first.connection_class.__name__  # and to the Sentinels
    assert (store.prefix, store.wait_replicas, store.wait_timeout) == ("p:", 1, 0.25)
    store.close()


def test_a_plain_redis_url_takes_a_prefix_too(redis_url: str) -> None:
    prefix = _prefix()
    store = store_from_url(f"{redis_url}?prefix={prefix}")
    assert isinstance(store, RedisStore)
    assert store.prefix == prefix
    assert store.create("{plainurl}x", {"a": "1"}, 60)
    assert store.client.exists(prefix + "{plainurl}x") == 1
    store.client.delete(prefix + "{plainurl}x")
    store.close()


@pytest.mark.parametrize("prefix", ["{app}:", "app}:", "a{"])
def test_a_prefix_with_braces_is_refused(prefix: str) -> None:
    # The session's {family} must be the first braces of its key, or a
    # session and its successors could land in different Cluster slots.
    with pytest.raises(ValueError, match="prefix"):
        RedisStore("redis://127.0.0.1:1/0", prefix=prefix)


def test_a_wait_timeout_must_be_shorter_than_the_socket_timeout() -> None:
    with pytest.raises(ValueError, match="wait_timeout"):
        RedisStore("redis://127.0.0.1:1/0?wait_replicas=1&wait_timeout=3")


# -- real Sentinel and Cluster deployments ----------------------------------------------------


def test_store_from_url_sentinel(redis_sentinels: t.Any, caplog: pytest.LogCaptureFixture) -> None:
    prefix = _prefix()
    with caplog.at_level(logging.WARNING, logger="wsgi_sessions"):
        store = store_from_url(redis_sentinels.url(query=f"?prefix={prefix}"))
    assert not caplog.records  # the URL's client has its timeouts
    assert isinstance(store, RedisStore)
    assert store.create("{sentinel}x", {"a": "1"}, 60)
    master = redis.Redis(port=redis_sentinels.master.port)
    assert master.hget(prefix + "{sentinel}x", "a") == b"1"
    master.close()
    store.close()


def test_store_from_url_cluster(redis_cluster: t.Any, caplog: pytest.LogCaptureFixture) -> None:
    prefix = _prefix()
    with caplog.at_level(logging.WARNING, logger="wsgi_sessions"):
        store = store_from_url(redis_cluster.url(query=f"?prefix={prefix}"))
    assert not caplog.records
    assert isinstance(store, RedisStore)
    assert store.create("{cluster}x", {"a": "1"}, 60)
    node = redis_cluster.node_of_slot(key_slot(b"cluster"))
    direct = redis.Redis(port=node.port)
    assert direct.hget(prefix + "{cluster}x", "a") == b"1"
    direct.close()
    store.close()


def test_an_unreachable_cluster_is_a_store_error_naming_no_password() -> None:
    from redis_servers import spare_port

    url = f"redis+cluster://:hunter2@127.0.0.1:{spare_port()}?socket_timeout=0.5"
    with pytest.raises(SessionStoreError, match="Cluster") as info:
        store_from_url(url)
    assert "hunter2" not in str(info.value)


def test_ready_sentinel_and_cluster_clients_are_accepted(
    redis_sentinels: t.Any, redis_cluster: t.Any, caplog: pytest.LogCaptureFixture
) -> None:
    sentinel = Sentinel(
        [("127.0.0.1", s.port) for s in redis_sentinels.sentinels], socket_timeout=2
    )
    cluster = RedisCluster(
        startup_nodes=[ClusterNode("127.0.0.1", n.port) for n in redis_cluster.nodes],
        socket_timeout=2,
        socket_connect_timeout=2,
    )
    stores = [
        RedisStore(sentinel.master_for(redis_sentinels.service), prefix=_prefix()),
        RedisStore(cluster, prefix=_prefix()),
    ]
    with caplog.at_level(logging.WARNING, logger="wsgi_sessions"):
        for store in stores:
            assert store.create("{ready}x", {"a": "1"}, 60)
            assert store.rename("{ready}x", "{ready}y") is True
            assert store.load("{ready}y") == {"a": "1"}
            store.close()
    assert not caplog.records
    for client in sentinel.sentinels:
        client.close()


def test_a_ready_cluster_client_without_a_socket_timeout_is_warned_about(
    redis_cluster: t.Any, caplog: pytest.LogCaptureFixture
) -> None:
    cluster = RedisCluster(
        startup_nodes=[ClusterNode("127.0.0.1", n.port) for n in redis_cluster.nodes]
    )
    with caplog.at_level(logging.WARNING, logger="wsgi_sessions"):
        RedisStore(cluster).close()
    assert any("socket_timeout" in r.getMessage() for r in caplog.records)


# -- one hash slot per session family, across regenerate() -----------------------------------


def _all_keys(cluster: t.Any, prefix: str) -> dict[bytes, int]:
    """Every key under ``prefix`` on every node, with the port of its master."""
    found: dict[bytes, int] = {}
    for node in cluster.nodes:
        client = redis.Redis(port=node.port)
        if client.info("replication")["role"] == "master":
            for key in client.scan_iter(match=prefix + "*", count=1000):
                found[key] = node.port
        client.close()
    return found


def test_no_crossslot_across_regenerate_and_invalidate_on_a_cluster(redis_cluster: t.Any) -> None:
    """Each session logs in (regenerate) five times, writes, and logs out: every
    script touches the session, its ended markers and its successors at once,
    so one key outside the family's slot would be a CROSSSLOT error (a 503)."""
    prefix = _prefix()
    store = RedisStore(redis_cluster.url(query=f"?prefix={prefix}"))

    def app(environ: t.Any, start_response: t.Any) -> list[bytes]:
        session = get_session(environ)
        action = environ["PATH_INFO"]
        if action == "/login":
            session.regenerate()
        elif action == "/logout":
            session.invalidate()
        count = 0
        if action != "/logout":
            count = session.get("count", 0)
            session["count"] = count + 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(count).encode()]

    middleware = SessionMiddleware(app, {"secret_key": SECRET, "store": store})
    for _ in range(12):
        client = Client(middleware)
        paths = ["/", *["/login", "/"] * 5, "/logout"]
        responses = [client.get(path) for path in paths]
        assert [r.status_code for r in responses] == [200] * len(paths)
        # The count goes on across the five regenerations: nothing was lost.
        assert [r.get_data(as_text=True) for r in responses] == [*map(str, range(11)), "0"]
    keys = _all_keys(redis_cluster, prefix)
    by_family: dict[bytes, set[int]] = {}
    for key, port in keys.items():
        family = key[len(prefix) :].split(b"}")[0]
        by_family.setdefault(family, set()).add(key_slot(key))
        assert port == redis_cluster.node_of_slot(key_slot(key)).port
    assert len(by_family) == 12
    # Each family: six ids (the first and five regenerated), all in one slot.
    assert all(len(slots) == 1 for slots in by_family.values())
    assert len(keys) == 12 * 6
    # ...and the families spread over the masters: the test exercised a real cluster.
    assert len(set(keys.values())) > 1
    store.close()


def test_a_script_over_two_slots_would_fail(redis_cluster: t.Any) -> None:
    # What the test above guards against: a rename out of the family's slot
    # is refused by the cluster (so a key scheme that allowed it would 503).
    store = RedisStore(redis_cluster.url(query=f"?prefix={_prefix()}"))
    store.create("{slot-a}x", {"a": "1"}, 60)
    assert key_slot(b"slot-a") != key_slot(b"slot-b")
    with pytest.raises(SessionStoreError):
        store.rename("{slot-a}x", "{slot-b}x")
    store.close()


# -- wait_replicas --------------------------------------------------------------------------


def _sends(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the writes to a Redis socket: one per round trip."""
    from redis.connection import AbstractConnection

    sends: list[int] = []
    original = AbstractConnection.send_packed_command

    def counting(self: t.Any, command: t.Any, check_health: bool = True) -> None:
        sends.append(1)
        original(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    return sends


def test_wait_replicas_reaches_the_replica_in_one_round_trip(
    redis_sentinels: t.Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = _prefix()
    store = RedisStore(redis_sentinels.url(query=f"?prefix={prefix}&wait_replicas=1"))
    assert store.create("{waited}x", {"a": "1"}, 60)
    assert store.apply("{waited}x", {}, []) is True  # connected, the script loaded
    sends = _sends(monkeypatch)
    assert store.apply("{waited}x", {"b": "2"}, []) is True
    assert len(sends) == 1  # EVALSHA and WAIT in one pipeline
    replica = redis.Redis(port=redis_sentinels.replicas[0].port)
    # Acknowledged means on the replica already, not "soon".
    assert replica.hget(prefix + "{waited}x", "b") == b"2"
    replica.close()
    store.close()


def test_wait_replicas_loads_its_scripts_again_after_a_script_flush(
    redis_sentinels: t.Any,
) -> None:
    # As on a promoted replica, which never had the scripts: NOSCRIPT inside
    # the pipeline, then SCRIPT LOAD and the pipeline again.
    store = RedisStore(redis_sentinels.url(query=f"?prefix={_prefix()}&wait_replicas=1"))
    assert store.create("{flushed}x", {"a": "1"}, 60)
    master = redis.Redis(port=redis_sentinels.master.port)
    master.script_flush()  # our own deployment
    master.close()
    assert store.apply("{flushed}x", {"b": "2"}, []) is True
    assert store.load("{flushed}x") == {"a": "1", "b": "2"}
    store.close()


def test_a_write_no_replica_acknowledged_is_a_503_not_a_false_success(
    redis_sentinels: t.Any,
) -> None:
    prefix = _prefix()
    store = RedisStore(
        redis_sentinels.url(query=f"?prefix={prefix}&wait_replicas=1&wait_timeout=0.3")
    )

    def app(environ: t.Any, start_response: t.Any) -> list[bytes]:
        get_session(environ)["n"] = environ["QUERY_STRING"]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    client = Client(SessionMiddleware(app, {"secret_key": SECRET, "store": store}))
    assert client.get("/?1").status_code == 200
    replica = redis_sentinels.replicas[0].pid
    os.kill(replica, signal.SIGSTOP)  # our own replica stops acknowledging
    try:
        assert client.get("/?2").status_code == 503
        with pytest.raises(SessionStoreError, match="0 of 1 replicas acknowledged"):
            store.apply("{stopped}x", {}, [])  # no record: still a write that waits
    finally:
        os.kill(replica, signal.SIGCONT)
    assert client.get("/?3").status_code == 200
    store.close()


def test_wait_replicas_on_a_cluster_without_replicas_is_a_store_error(
    redis_cluster: t.Any,
) -> None:
    store = RedisStore(redis_cluster.url(query=f"?prefix={_prefix()}&wait_replicas=1"))
    with pytest.raises(SessionStoreError, match="replicas acknowledged"):
        store.create("{nowait}x", {"a": "1"}, 60)
    assert store.load("{nowait}x") == {"a": "1"}  # on the master: unknown, not "not written"
    store.close()


def test_wsgi_sessions_purge_takes_sentinel_and_cluster_urls(
    redis_sentinels: t.Any, redis_cluster: t.Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from redis_servers import spare_port
    from wsgi_sessions.cli import main

    assert main(["purge", "--store", redis_sentinels.url()]) == 0
    assert main(["purge", "--store", redis_cluster.url()]) == 0
    assert capsys.readouterr().out.count("purged 0 expired session(s)") == 2
    dead = f"redis+cluster://:hunter2@127.0.0.1:{spare_port()}?socket_timeout=0.5"
    assert main(["purge", "--store", dead]) == 1
    assert "hunter2" not in capsys.readouterr().err


# -- TLS: rediss+sentinel:// and rediss+cluster:// against TLS-only servers -----------------


@pytest.mark.parametrize("kind", ["sentinel", "cluster"])
def test_rediss_urls_talk_tls_to_tls_only_deployments(
    kind: str, service_unavailable: t.Callable[[str], t.NoReturn]
) -> None:
    import redis_servers

    try:
        deployment = (
            redis_servers.Sentinels(tls=True)
            if kind == "sentinel"
            else redis_servers.Cluster(tls=True)
        )
    except redis_servers.Unavailable as exc:
        service_unavailable(f"no TLS Redis {kind} for the test: {exc}")
    try:
        # Every server listens on a TLS port only (port 0): a success is TLS.
        store = RedisStore(deployment.tls_url(f"&prefix={_prefix()}&socket_timeout=1"))
        assert store.create("{tls}x", {"a": "1"}, 60)
        assert store.rename("{tls}x", "{tls}y") is True
        assert store.load("{tls}y") == {"a": "1"}
        store.close()
        # The same servers without TLS: refused, as a store error (a 503).
        with pytest.raises(SessionStoreError):
            plain = RedisStore(deployment.url(query="?socket_timeout=0.5"))
            plain.load("{tls}y")
    finally:
        deployment.stop()
