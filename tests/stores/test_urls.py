"""stores/__init__.py: store URLs in messages never show a password."""

from __future__ import annotations

import pytest

from wsgi_sessions.stores import mask_url, store_from_url


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://user:hunter2@127.0.0.1:6379/0", "redis://user:***@127.0.0.1:6379/0"),
        ("redis://:hunter2@127.0.0.1/0", "redis://:***@127.0.0.1/0"),
        ("rediss://user:hun%40ter2@host/0", "rediss://user:***@host/0"),
        ("redis://user:p@ss:w/rd@host/0", "redis://user:***@host/0"),  # unescaped @ and /
        ("redis+foo://user:hunter2@127.0.0.1/0", "redis+foo://user:***@127.0.0.1/0"),
        ("redis://host/0?password=hunter2&db=1", "redis://host/0?password=***&db=1"),
        ("redis://host/0?db=1&Password=hunter2", "redis://host/0?db=1&Password=***"),
        ("unix://user:hunter2@/tmp/redis.sock?db=0", "unix://user:***@/tmp/redis.sock?db=0"),
        # No password: shown as it is.
        ("redis://user@127.0.0.1/0", "redis://user@127.0.0.1/0"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("sqlite:////var/lib/app/sessions.db", "sqlite:////var/lib/app/sessions.db"),
        ("memory://", "memory://"),
        ("not a url", "not a url"),
        ("redis://[::1:hunter2@host/0", "redis://[:***@host/0"),  # unparseable: masked broadly
        # Sentinel and Cluster: several hosts, and the Sentinels' own password.
        (
            "redis+sentinel://:hunter2@10.0.0.1:26379,10.0.0.2:26379/mymaster/0",
            "redis+sentinel://:***@10.0.0.1:26379,10.0.0.2:26379/mymaster/0",
        ),
        (
            "rediss+cluster://app:hun@ter2@h1:7000,[::1]:7001?prefix=s:",
            "rediss+cluster://app:***@h1:7000,[::1]:7001?prefix=s:",
        ),
        (
            "redis+sentinel://h1:26379,h2:26379/svc?sentinel_password=hunter2&prefix=x",
            "redis+sentinel://h1:26379,h2:26379/svc?sentinel_password=***&prefix=x",
        ),
        (
            "redis+cluster://h1:7000,h2:7001,h3:7002",
            "redis+cluster://h1:7000,h2:7001,h3:7002",
        ),
    ],
)
def test_mask_url_hides_the_password(url: str, masked: str) -> None:
    assert mask_url(url) == masked


@pytest.mark.parametrize(
    "url",
    [
        "redis+foo://user:hunter2@127.0.0.1/0",
        "mongodb://admin:hunter2@db/0",
        "sqlite://user:hunter2@host/x.db",
        "mssql://app:hunter2@db/app?password=hunter2",
    ],
)
def test_a_refused_url_is_named_without_its_password(url: str) -> None:
    with pytest.raises(ValueError, match="store") as info:
        store_from_url(url)
    assert "hunter2" not in str(info.value)
    assert "***" in str(info.value)
