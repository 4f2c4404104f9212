"""The wsgi-sessions command, run in-process and as the installed console script."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import typing as t
import zlib
from pathlib import Path

import pytest
from itsdangerous import URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode

from wsgi_sessions import SecureCookieSessionInterface, SessionConfig
from wsgi_sessions.cli import main
from wsgi_sessions.stores import SQLiteStore


def _cookie(secret: str, data: dict[str, object]) -> str:
    config = SessionConfig({"secret_key": secret})
    serializer = SecureCookieSessionInterface().get_signing_serializer(config)
    assert serializer is not None
    return serializer.dumps(data)


def test_secret_prints_a_long_random_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["secret"]) == 0
    first = capsys.readouterr().out.strip()
    main(["secret"])
    second = capsys.readouterr().out.strip()
    assert len(first) == 64
    int(first, 16)
    assert first != second


def test_inspect_verifies_and_pretty_prints(capsys: pytest.CaptureFixture[str]) -> None:
    cookie = _cookie("s3cret", {"user": "alice", "cart": [1, 2], "when": (1, 2)})
    assert main(["inspect", cookie, "--secret-key", "s3cret"]) == 0
    out = capsys.readouterr().out
    assert "signed at: " in out
    assert "'user': 'alice'" in out
    assert "'when': (1, 2)" in out  # tagged JSON is decoded


def test_inspect_accepts_name_equals_value(capsys: pytest.CaptureFixture[str]) -> None:
    cookie = _cookie("s3cret", {"n": 1})
    assert main(["inspect", f"session={cookie}", "--secret-key", "s3cret"]) == 0
    assert "'n': 1" in capsys.readouterr().out


def test_inspect_rejects_a_wrong_key(capsys: pytest.CaptureFixture[str]) -> None:
    cookie = _cookie("s3cret", {"user": "alice"})
    assert main(["inspect", cookie, "--secret-key", "other"]) == 1
    captured = capsys.readouterr()
    assert "invalid cookie" in captured.err
    assert "alice" not in captured.out + captured.err


def test_inspect_refuses_an_altered_spelling_of_a_valid_signature(
    capsys: pytest.CaptureFixture[str], altered_signatures: t.Callable[[str], dict[str, str]]
) -> None:
    for n in range(100):  # until the signature has a "-" or "_" to respell
        cookie = _cookie("s3cret", {"n": n})
        if "standard-alphabet" in altered_signatures(cookie):
            break
    cases = altered_signatures(cookie)
    assert len(cases) == 4
    for case, altered in cases.items():
        assert main(["inspect", altered, "--secret-key", "s3cret"]) == 1, case
        assert "invalid cookie" in capsys.readouterr().err
    assert main(["inspect", cookie, "--secret-key", "s3cret"]) == 0


def test_inspect_bounds_decompression(
    capsys: pytest.CaptureFixture[str], decompressed_sizes: list[int]
) -> None:
    """A validly signed cookie holding 5 MB of compressed zeros is refused
    after at most the bound's worth of output."""
    signer = URLSafeTimedSerializer(
        "s3cret",
        salt="cookie-session",
        signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1},
    ).make_signer()
    data = b'{"z":"' + b"0" * 5_000_000 + b'"}'
    bomb = signer.sign(b"." + base64_encode(zlib.compress(data, 9))).decode()
    assert main(["inspect", bomb, "--secret-key", "s3cret"]) == 1
    captured = capsys.readouterr()
    assert "invalid cookie: BadPayload" in captured.err
    assert "000" not in captured.out + captured.err
    assert sum(decompressed_sizes) <= SecureCookieSessionInterface.max_payload_size + 1


def test_inspect_tries_fallback_keys(capsys: pytest.CaptureFixture[str]) -> None:
    cookie = _cookie("old", {"user": "alice"})
    assert main(["inspect", cookie, "--secret-key", "new", "--fallback", "old"]) == 0
    assert "alice" in capsys.readouterr().out


def test_inspect_reads_the_key_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cookie = _cookie("s3cret", {"user": "alice"})
    monkeypatch.delenv("WSGI_SESSIONS_SECRET_KEY", raising=False)
    assert main(["inspect", cookie]) == 2
    assert "--secret-key" in capsys.readouterr().err
    monkeypatch.setenv("WSGI_SESSIONS_SECRET_KEY", "s3cret")
    assert main(["inspect", cookie]) == 0
    assert "alice" in capsys.readouterr().out


def test_purge_deletes_expired_sqlite_sessions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "sessions.db"
    store = SQLiteStore(path)
    store.create("{aaaaaaaa}live", {"a": "1"}, 3600)
    store.create("{bbbbbbbb}dead", {"a": "1"}, 3600)
    # Expire one row directly, as time passing would.
    store._connection().execute(
        "UPDATE wsgi_sessions SET expires_at = 0 WHERE key = ?", ("{bbbbbbbb}dead",)
    )
    assert main(["purge", "--store", f"sqlite:///{path}"]) == 0
    assert capsys.readouterr().out.strip() == "purged 1 expired session(s)"
    assert store.load("{aaaaaaaa}live") == {"a": "1"}


def test_purge_rejects_an_unknown_store_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["purge", "--store", "mongodb://x"]) == 2
    assert "store" in capsys.readouterr().err


def test_purge_of_a_missing_sqlite_file_says_so_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = tmp_path / "typo.db"
    assert main(["purge", "--store", f"sqlite:///{typo}"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert not typo.exists()


def test_purge_reports_a_store_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"this is not an SQLite database" * 100)
    assert main(["purge", "--store", f"sqlite:///{broken}"]) == 1
    err = capsys.readouterr().err
    assert "SQLite session store failed" in err


def test_the_console_script_is_installed() -> None:
    script = shutil.which("wsgi-sessions", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the package is not installed with its console script")
    result = subprocess.run([script, "secret"], capture_output=True, text=True, check=True)
    assert len(result.stdout.strip()) == 64


@pytest.mark.parametrize(
    "url",
    [
        "redis+foo://user:hunter2@127.0.0.1/0",  # refused
        "sqlite://user:hunter2@127.0.0.1/x.db",  # refused
        "redis://user:hunter2@127.0.0.1:1/0",  # a dead port
        "redis://127.0.0.1:1/0?password=hunter2",
    ],
)
def test_purge_never_shows_a_password(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    main(["purge", "--store", url])
    out, err = capsys.readouterr()
    assert "hunter2" not in out + err


def test_purge_against_a_redis_that_is_down_fails(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("redis")
    assert main(["purge", "--store", "redis://:hunter2@127.0.0.1:1/0"]) == 1
    out, err = capsys.readouterr()
    assert "Redis session store failed during purge" in err
    assert "purged" not in out
    assert "hunter2" not in out + err


def test_schema_prints_the_sqlite_ddl(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    SQLiteStore(tmp_path / "s.db").close()
    assert main(["schema", "--store", f"sqlite:///{tmp_path}/s.db"]) == 0
    assert "CREATE TABLE IF NOT EXISTS wsgi_sessions" in capsys.readouterr().out


def test_schema_prints_the_ddl_of_a_mysql_store_without_connecting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("MySQLdb")
    # Port 1: nothing listens there; printing the DDL needs no database.
    assert main(["schema", "--store", "mysql://app:hunter2@127.0.0.1:1/app?table=web"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("-- wsgi-sessions")
    assert "CREATE TABLE IF NOT EXISTS web (" in out
    assert "CREATE PROCEDURE web_apply_v1(" in out
    assert "hunter2" not in out + err


@pytest.mark.parametrize(
    "url",
    [
        "memory://",
        "redis://:hunter2@127.0.0.1/0",
        "mysql://app:hunter2@db/app?tabel=web",
        "postgresql://app:hunter2@db/app?tabel=web",
    ],
)
def test_schema_refuses_a_store_without_one(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("MySQLdb")
    assert main(["schema", "--store", url]) == 2
    out, err = capsys.readouterr()
    assert "error:" in err
    assert "hunter2" not in out + err
