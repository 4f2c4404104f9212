"""Every example, run as its README line runs it, says where it serves, and serves there.

Each is started as its own process on a free port (``PORT``; for the ini file,
a copy whose ``listen`` line names the port), its output is read until it
prints ``http://127.0.0.1:<port>``, and that URL answers with a session cookie.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import typing as t
import urllib.error
import urllib.request
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parents[2] / "examples"
BIN = Path(sys.executable).parent
SECRET = "examples-run-test-" + "k" * 32
# Straight to the loopback address, whatever proxy the environment names.
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def script(name: str) -> t.Callable[[Path, int], list[str]]:
    def command(tmp_path: Path, port: int) -> list[str]:
        return [sys.executable, str(EXAMPLES / name)]

    return command


def pserve(tmp_path: Path, port: int) -> list[str]:
    ini = tmp_path / "pyramid.ini"
    text = (EXAMPLES / "pyramid.ini").read_text()
    assert "listen = 127.0.0.1:8000\n" in text
    ini.write_text(text.replace("listen = 127.0.0.1:8000\n", f"listen = 127.0.0.1:{port}\n"))
    return [str(BIN / "pserve"), str(ini), f"session_secret={SECRET}"]


EXAMPLE_COMMANDS = {
    "wsgi_app.py": script("wsgi_app.py"),
    "demo.py": script("demo.py"),
    "flask_app.py": script("flask_app.py"),
    "pyramid_app.py": script("pyramid_app.py"),
    "bottle_app.py": script("bottle_app.py"),
    "falcon_app.py": script("falcon_app.py"),
    "pyramid.ini (pserve)": pserve,
}


def test_every_example_file_is_run_here() -> None:
    runnable = {path.name for path in EXAMPLES.glob("*.py")} | {"pyramid.ini (pserve)"}
    assert runnable == set(EXAMPLE_COMMANDS)


def wait_for_line(process: subprocess.Popen[str], needle: str, timeout: float) -> list[str]:
    """The output lines up to the first that contains ``needle`` (or all of them, on timeout)."""
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if needle in line:
                found.set()
                return

    threading.Thread(target=read, daemon=True).start()
    found.wait(timeout)
    return lines


@pytest.mark.parametrize("name", EXAMPLE_COMMANDS)
def test_the_example_prints_its_url_and_serves_there(name: str, tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # Without PYTHONUNBUFFERED: an example must flush its line itself, as it must
    # for a user whose output is a pipe (a container's log).
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    env.update(PORT=str(port), WSGI_SESSIONS_SECRET_KEY=SECRET, PYTHONPATH=str(EXAMPLES))
    process = subprocess.Popen(
        EXAMPLE_COMMANDS[name](tmp_path, port),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = wait_for_line(process, url, timeout=30)
        assert any(url in line for line in lines), f"{name} never printed {url}: {lines}"
        deadline = time.monotonic() + 10
        while True:  # the line may come just before the socket listens
            try:
                with NO_PROXY.open(url + "/", timeout=5) as response:
                    assert response.status == 200
                    assert response.headers["Set-Cookie"].startswith("session=")
                    break
            except urllib.error.URLError as error:
                if not isinstance(error.reason, ConnectionRefusedError):
                    raise
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        process.terminate()
        process.wait(timeout=10)
        assert process.stdout is not None
        process.stdout.close()
