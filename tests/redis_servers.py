"""Throwaway Redis deployments on spare loopback ports: a Sentinel setup and a
Cluster, started as plain ``redis-server`` processes and stopped by their pid.

Shared by the test suite (session-scoped fixtures in ``tests/conftest.py``)
and ``bench/redis_failover.py``, so it needs no pytest: a deployment that
cannot start raises :class:`Unavailable` and the caller decides (skip, fail,
exit). Every file lives in a temporary directory removed by ``stop()``.

Timings are short on purpose (a node is "down" after 1 s of silence) so that
a failover completes in seconds; production values are longer.
"""

from __future__ import annotations

import random
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import typing as t
from pathlib import Path

__all__ = ["Cluster", "RedisProcess", "Sentinels", "Unavailable", "spare_port"]

#: Milliseconds of silence before a Sentinel or a cluster node calls a peer down.
DOWN_AFTER_MS = 1000


class Unavailable(RuntimeError):
    """redis-server / redis-cli is missing, or a deployment did not come up."""


def _executable(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise Unavailable(f"{name} is not installed")
    return path


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


_taken: set[int] = set()


def spare_port(bus: bool = False) -> int:
    """A free loopback port below the ephemeral range; with ``bus``, one whose
    cluster bus port (port + 10000) is free too."""
    for _ in range(1000):
        port = random.randrange(20000, 29000)
        if port in _taken or not _port_free(port):
            continue
        if bus and not _port_free(port + 10000):
            continue
        _taken.add(port)
        return port
    raise Unavailable("no spare loopback port")


# The CA of each port that speaks TLS (a TLS deployment's processes).
_tls_ca: dict[int, Path] = {}


def _answers(port: int) -> bool:
    try:
        sock = socket.create_connection(("127.0.0.1", port), 0.5)
        if port in _tls_ca:
            context = ssl.create_default_context(cafile=str(_tls_ca[port]))
            try:
                sock = context.wrap_socket(sock, server_hostname="127.0.0.1")  # owns it now
            except OSError:
                sock.close()
                raise
        with sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _cli(port: int, *args: str, timeout: float = 10) -> str:
    done = subprocess.run(
        [_executable("redis-cli"), "-h", "127.0.0.1", "-p", str(port), *_tls_args(port), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.stdout


def _tls_args(port: int) -> list[str]:
    return ["--tls", "--cacert", str(_tls_ca[port])] if port in _tls_ca else []


def certificates(directory: Path) -> Path:
    """A CA and a certificate for 127.0.0.1 signed by it, made with the
    openssl command in ``directory``; returns the directory."""
    openssl = _executable("openssl")
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for command in (
        ["req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=test-ca"],
        ["req", *key, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"],
        [
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    ):
        done = subprocess.run(
            [openssl, *command], cwd=directory, capture_output=True, timeout=30, check=False
        )
        if done.returncode != 0:
            raise Unavailable(f"openssl {command[0]} failed: {done.stderr[-300:]!r}")
    return directory


def _tls_config(port: int, files: Path | None) -> str:
    """The lines that make ``port`` a TLS port (and the plain port off)."""
    if files is None:
        return f"port {port}\n"
    _tls_ca[port] = files / "ca.crt"
    return (
        f"port 0\ntls-port {port}\ntls-cert-file {files / 'server.crt'}\n"
        f"tls-key-file {files / 'server.key'}\ntls-ca-cert-file {files / 'ca.crt'}\n"
        "tls-auth-clients no\ntls-replication yes\ntls-cluster yes\n"
    )


def _wait(condition: t.Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise Unavailable(f"{what} within {seconds:g} s")
        time.sleep(0.05)


class RedisProcess:
    """One redis-server (or Sentinel) process of ours."""

    def __init__(
        self, directory: Path, port: int, *args: str, config: str = "", tls: Path | None = None
    ) -> None:
        self.port = port
        self.args = args
        self.directory = directory
        self.config = directory / f"{port}.conf"
        self.config.write_text(f"{_tls_config(port, tls)}bind 127.0.0.1\ndir {directory}\n{config}")
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        """(Re)start it with the same configuration file and arguments."""
        self.process = subprocess.Popen(
            [_executable("redis-server"), str(self.config), *self.args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def wait_ready(self, seconds: float = 10) -> None:
        def up() -> bool:
            if self.process is None or self.process.poll() is not None:
                raise Unavailable(f"redis-server on port {self.port} exited")
            return _answers(self.port)

        _wait(up, seconds, f"redis-server on port {self.port} did not answer")

    def kill(self) -> None:
        """SIGKILL this process (ours, by its pid) and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def info(self, section: str) -> dict[str, str]:
        pairs = (line.split(":", 1) for line in _cli(self.port, "INFO", section).splitlines())
        return {pair[0]: pair[1].strip() for pair in pairs if len(pair) == 2}


_COMMON = "save ''\nappendonly no\n"


class Sentinels:
    """One master, ``replicas`` replicas and three Sentinels (quorum 2).

    With ``failover`` false, ready as soon as the replica follows the master
    (enough to serve); true also waits until each Sentinel has found the
    replica and the other two, which a failover needs (a few seconds more).
    """

    service = "mymaster"

    def __init__(self, replicas: int = 1, failover: bool = False, tls: bool = False) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="wsgi-sessions-sentinel-"))
        self.processes: list[RedisProcess] = []
        self.tls: Path | None = None
        try:
            if tls:
                self.tls = certificates(self.directory)
            self.master = self._spawn(spare_port(), config=_COMMON)
            self.replicas = [
                self._spawn(
                    spare_port(), config=f"{_COMMON}replicaof 127.0.0.1 {self.master.port}\n"
                )
                for _ in range(replicas)
            ]
            monitor = (
                f"sentinel monitor {self.service} 127.0.0.1 {self.master.port} 2\n"
                f"sentinel down-after-milliseconds {self.service} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {self.service} 5000\n"
                f"sentinel parallel-syncs {self.service} 1\n"
            )
            self.sentinels = [
                self._spawn(spare_port(), "--sentinel", config=monitor) for _ in range(3)
            ]
            for process in self.processes:
                process.wait_ready()
            _wait(self._replicating, 20, "the replica did not follow the master")
            if failover:
                _wait(self._healthy, 30, "the Sentinels did not find each other")
        except BaseException:
            self.stop()
            raise

    def _spawn(self, port: int, *args: str, config: str) -> RedisProcess:
        process = RedisProcess(self.directory, port, *args, config=config, tls=self.tls)
        self.processes.append(process)
        return process

    def _replicating(self) -> bool:
        return all(
            replica.info("replication").get("master_link_status") == "up"
            for replica in self.replicas
        )

    def _healthy(self) -> bool:
        if not self._replicating():
            return False
        # Every Sentinel has found the replica and the other two Sentinels.
        for sentinel in self.sentinels:
            info = _cli(sentinel.port, "SENTINEL", "MASTER", self.service).split()
            fields = dict(zip(info[::2], info[1::2], strict=False))
            wanted = {"num-slaves": str(len(self.replicas)), "num-other-sentinels": "2"}
            if any(fields.get(name) != value for name, value in wanted.items()):
                return False
        return True

    @property
    def addresses(self) -> str:
        """``host:port,host:port,...`` of the Sentinels, for a URL."""
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    def url(self, scheme: str = "redis+sentinel", query: str = "") -> str:
        return f"{scheme}://{self.addresses}/{self.service}/0{query}"

    def tls_url(self, query: str = "") -> str:
        """The ``rediss+sentinel://`` URL of a TLS deployment, trusting its CA."""
        assert self.tls is not None
        return self.url("rediss+sentinel", f"?ssl_ca_certs={self.tls / 'ca.crt'}{query}")

    def cut_replication_and_kill(self, window: float = 0.1) -> None:
        """A crash after a network blip: the master drops its replicas' links
        and refuses their reconnection (an ACL denies the replication
        commands), acknowledges writes for ``window`` seconds that no replica
        receives, then is SIGKILLed."""
        _cli(self.master.port, "ACL", "SETUSER", "default", "-psync", "-sync", "-replconf")
        _cli(self.master.port, "CLIENT", "KILL", "TYPE", "replica")
        time.sleep(window)
        self.master.kill()

    def master_port(self) -> int:
        """The port the Sentinels name as master now."""
        reply = _cli(self.sentinels[0].port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
        return int(reply.split()[1])

    def stop(self) -> None:
        for process in self.processes:
            process.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


class Cluster:
    """A Redis Cluster of ``masters`` masters, each with ``replicas`` replicas."""

    def __init__(self, masters: int = 3, replicas: int = 0, tls: bool = False) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="wsgi-sessions-cluster-"))
        self.nodes: list[RedisProcess] = []
        self.tls: Path | None = None
        try:
            if tls:
                self.tls = certificates(self.directory)
            for _ in range(masters * (1 + replicas)):
                port = spare_port(bus=True)
                config = (
                    f"{_COMMON}cluster-enabled yes\ncluster-config-file nodes-{port}.conf\n"
                    f"cluster-node-timeout {DOWN_AFTER_MS}\n"
                )
                self.nodes.append(RedisProcess(self.directory, port, config=config, tls=self.tls))
            for node in self.nodes:
                node.wait_ready()
            done = subprocess.run(
                [
                    _executable("redis-cli"),
                    *_tls_args(self.nodes[0].port),
                    "--cluster",
                    "create",
                    *(f"127.0.0.1:{node.port}" for node in self.nodes),
                    "--cluster-replicas",
                    str(replicas),
                    "--cluster-yes",
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            if done.returncode != 0:
                raise Unavailable(f"redis-cli --cluster create failed: {done.stdout[-500:]}")
            _wait(self._healthy, 30, "the cluster did not reach cluster_state:ok")
        except BaseException:
            self.stop()
            raise

    def _healthy(self) -> bool:
        for node in self.nodes:
            if node.process is None or node.process.poll() is not None:
                continue
            if "cluster_state:ok" not in _cli(node.port, "CLUSTER", "INFO"):
                return False
            if node.info("replication").get("role") == "slave" and (
                node.info("replication").get("master_link_status") != "up"
            ):
                return False
        return True

    def wait_healthy(self, seconds: float = 30) -> None:
        _wait(self._healthy, seconds, "the cluster did not reach cluster_state:ok")

    @property
    def addresses(self) -> str:
        return ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def url(self, scheme: str = "redis+cluster", query: str = "") -> str:
        return f"{scheme}://{self.addresses}{query}"

    def tls_url(self, query: str = "") -> str:
        """The ``rediss+cluster://`` URL of a TLS deployment, trusting its CA."""
        assert self.tls is not None
        return self.url("rediss+cluster", f"?ssl_ca_certs={self.tls / 'ca.crt'}{query}")

    def node_of_slot(self, slot: int) -> RedisProcess:
        """The live node that serves ``slot`` as master now."""
        for node in self.nodes:
            if node.process is None or node.process.poll() is not None:
                continue
            for line in _cli(node.port, "CLUSTER", "NODES").splitlines():
                parts = line.split()
                if "myself" in parts[2] and "master" in parts[2]:
                    for spec in parts[8:]:
                        low, _, high = spec.partition("-")
                        if low.isdigit() and int(low) <= slot <= int(high or low):
                            return node
        raise LookupError(f"no live master serves slot {slot}")

    def master_for(self, families: dict[str, list[str]]) -> RedisProcess:
        """The master serving the sessions (by family) of every group if one
        does, else the one serving the most of them: the one to kill."""
        from redis.crc import key_slot

        owners = {
            name: [self.node_of_slot(key_slot(family.encode())) for family in group]
            for name, group in families.items()
        }
        every = [owner for group in owners.values() for owner in group]
        return max(
            every,
            key=lambda node: (
                all(node in group for group in owners.values()),
                every.count(node),
            ),
        )

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()
        shutil.rmtree(self.directory, ignore_errors=True)
