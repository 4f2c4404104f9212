"""The documentation against the code: its snippets run, its settings reference
covers every setting, the tests it cites exist, and the built site (when
Sphinx is installed) documents every public name.

Every ```` ```python ```` block of docs/ and the README is executed as a user
would paste it: a fresh namespace, a scratch working directory, ``SECRET_KEY``
(and, for the Redis pages, ``REDIS_URL``) in the environment. A block that
builds a WSGI app with SessionMiddleware is then asked for ``/``.
"""

from __future__ import annotations

import base64
import html
import os
import re
import subprocess
import sys
import typing as t
from pathlib import Path
from urllib.parse import urlsplit
from uuid import uuid4

import pytest
import webtest

import wsgi_sessions
from conftest import (
    POSTGRESQL_URL,
    REDIS_URL,
    _reachable,
    drop_mysql_table,
    drop_postgresql_table,
    skip_or_fail,
)
from wsgi_sessions import SessionMiddleware, parse_settings

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS / "_ext"))
import settings_table  # noqa: E402

#: The table the SQL stores' snippets name; dropped after each.
DOCS_TABLE = "web_sessions"

_FENCE = re.compile(r"^(`{3,})([^\s`]*)[^\n]*\n(.*?)^\1\s*$", re.S | re.M)


def pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts)


def fenced(path: Path, language: str) -> list[str]:
    return [body for _, lang, body in _FENCE.findall(path.read_text()) if lang == language]


SNIPPETS = [
    pytest.param(block, id=f"{path.relative_to(ROOT)}#{number}")
    for path in [ROOT / "README.md", *pages()]
    for number, block in enumerate(fenced(path, "python"))
]


def test_there_are_snippets_in_the_pages_that_promise_them() -> None:
    with_code = {s.id.split("#")[0] for s in SNIPPETS}  # type: ignore[union-attr]
    for page in ("quickstart", "using-sessions", "settings", "frameworks/flask", "stores/redis"):
        assert f"docs/{page}.md" in with_code


@pytest.mark.parametrize("snippet", SNIPPETS)
def test_the_snippet_runs(
    snippet: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SECRET_KEY", "docs-snippet-" + "k" * 32)
    uses_redis = "REDIS_URL" in snippet
    if uses_redis:
        pytest.importorskip("redis")
        if not _reachable(REDIS_URL):
            skip_or_fail(f"Redis is not reachable at {REDIS_URL}")
        monkeypatch.setenv("REDIS_URL", REDIS_URL)
    if "POSTGRESQL_URL" in snippet:
        monkeypatch.setenv("POSTGRESQL_URL", request.getfixturevalue("postgresql_url"))
        request.addfinalizer(lambda: drop_postgresql_table(POSTGRESQL_URL, DOCS_TABLE))
    if "MYSQL" in snippet:
        url = request.getfixturevalue("mysql_url")
        monkeypatch.setenv("MYSQL_URL", url)
        parts = urlsplit(url)
        for name, value in [
            ("HOST", parts.hostname),
            ("USER", parts.username),
            ("PASSWORD", parts.password or ""),
            ("DATABASE", parts.path.lstrip("/")),
        ]:
            monkeypatch.setenv(f"MYSQL_{name}", value or "")
        request.addfinalizer(lambda: drop_mysql_table(url, DOCS_TABLE))
    if "SENTINEL" in snippet:  # a throwaway deployment of the tests' own, on loopback
        sentinels = request.getfixturevalue("redis_sentinels")
        monkeypatch.setenv("REDIS_SENTINEL_URL", sentinels.url(query=f"?prefix=docs{uuid4().hex}:"))
        host, _, port = sentinels.addresses.partition(",")[0].partition(":")
        monkeypatch.setenv("SENTINEL_HOST", host)
        monkeypatch.setenv("SENTINEL_PORT", port)
    if "CLUSTER_HOST" in snippet:
        host, _, port = (
            request.getfixturevalue("redis_cluster").addresses.partition(",")[0].partition(":")
        )
        monkeypatch.setenv("CLUSTER_HOST", host)
        monkeypatch.setenv("CLUSTER_PORT", port)
    namespace: dict[str, t.Any] = {"__name__": "docs_snippet"}
    exec(compile(snippet, "snippet", "exec"), namespace)
    app = namespace.get("application", namespace.get("app"))
    if isinstance(app, SessionMiddleware) and not uses_redis:
        # Served, it answers; a store or a cookie keeps what it wrote.
        response = webtest.TestApp(app).get("/", status="*")
        assert response.status_int in (200, 204)


# -- what the pages cite must exist -----------------------------------------------------------

_CITED_TEST = re.compile(r"(tests/[\w/]+\.py)::(test_\w+)")


def test_every_cited_test_exists() -> None:
    cited = {
        match.groups()
        for path in [ROOT / "README.md", *pages()]
        for match in _CITED_TEST.finditer(path.read_text())
    }
    assert len(cited) >= 20  # the security page cites one per promise
    for file, name in sorted(cited):
        assert re.search(rf"^\s*def {name}\(", (ROOT / file).read_text(), re.M), (file, name)


def test_every_example_is_included_in_a_guide() -> None:
    included = "".join(p.read_text() for p in (DOCS / "frameworks").glob("*.md"))
    for example in (ROOT / "examples").iterdir():
        if example.name != "demo.py":  # a tour of its own, named in the WSGI guide
            assert f"literalinclude}} ../../examples/{example.name}" in included, example


# -- the settings reference ---------------------------------------------------------------------


def settings_page_descriptions() -> dict[str, str]:
    (body,) = [
        block
        for _, lang, block in _FENCE.findall((DOCS / "settings.md").read_text())
        if lang == "{settings-reference}"
    ]
    return settings_table.parse_descriptions(body.splitlines())


def test_every_setting_is_described_and_nothing_else() -> None:
    assert settings_table.check(settings_page_descriptions()) == []


def test_every_setting_of_the_code_is_in_the_reference() -> None:
    names = [row.name for row in settings_table.code_settings()]
    assert sorted(names) == sorted(settings_table.accepted_names())
    assert {"secret_key", "secret_key_fallbacks", "store"} <= set(names)
    assert len(names) == len(set(names))


def test_the_check_notices_a_setting_without_a_description() -> None:
    descriptions = settings_page_descriptions()
    del descriptions["cookie_secure"]
    descriptions["cookie_colour"] = "a setting the code does not have"
    problems = settings_table.check(descriptions)
    assert any("'cookie_secure'" in p and "no description" in p for p in problems)
    assert any("'cookie_colour'" in p for p in problems)


@pytest.mark.parametrize("row", settings_table.code_settings(), ids=lambda row: row.name)
def test_the_shown_default_is_the_default(row: settings_table.Setting) -> None:
    shown = settings_table.format_default(row.default)
    defaults = parse_settings({})
    assert defaults[row.config_key] == row.default
    if row.default is None:
        assert shown == "none"
    elif row.default == []:
        assert shown == "[]"
    else:  # written in an ini file, the shown default parses to the default
        assert parse_settings({row.name: shown})[row.config_key] == row.default


# -- which services the tests use (issue 12 item 4) ---------------------------------------------

_SERVICE_URL = re.compile(r"""os\.environ\.get\(\s*"(WSGI_SESSIONS_\w+_URL)",\s*"([^"]+)"\s*\)""")


def test_the_docs_name_every_service_the_tests_use_and_its_default() -> None:
    services = _SERVICE_URL.findall((ROOT / "tests" / "conftest.py").read_text())
    assert ("WSGI_SESSIONS_REDIS_URL", REDIS_URL) in services or "WSGI_SESSIONS_REDIS_URL" in (
        os.environ
    )
    development = (DOCS / "development.md").read_text()
    for variable, default in services:
        assert f"| `{variable}` | `{default}` |" in development, variable


def test_the_readme_says_which_redis_the_tests_use() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "`WSGI_SESSIONS_REDIS_URL`" in readme
    assert "`redis://127.0.0.1:6379/15`" in readme
    assert "docs/development.md#running-the-tests" in readme


# -- the built site -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The HTML site: WSGI_SESSIONS_DOCS_BUILD (built by .ci/run), else built here."""
    given = os.environ.get("WSGI_SESSIONS_DOCS_BUILD")
    if given:
        return Path(given)
    pytest.importorskip(
        "sphinx", reason="the docs extra is not installed: pip install -e '.[docs]'"
    )
    out = tmp_path_factory.mktemp("html")
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
    subprocess.run([*command, str(DOCS), str(out)], check=True)
    return out


def inventory(built: Path) -> dict[str, set[str]]:
    from sphinx.util.inventory import InventoryFile

    with (built / "objects.inv").open("rb") as stream:
        loaded = InventoryFile.load(stream, "", lambda base, uri: uri)
    if hasattr(loaded, "data"):  # Sphinx 8.2+: an object, not a dict
        loaded = loaded.data
    return {kind: set(entries) for kind, entries in loaded.items()}


PUBLIC_MODULES = [
    "wsgi_sessions.errors",
    "wsgi_sessions.encrypted",
    "wsgi_sessions.interface",
    "wsgi_sessions.middleware",
    "wsgi_sessions.serialization",
    "wsgi_sessions.owners",
    "wsgi_sessions.server",
    "wsgi_sessions.server_session",
    "wsgi_sessions.sessions",
    "wsgi_sessions.settings",
    "wsgi_sessions.stores",
    "wsgi_sessions.stores.base",
    "wsgi_sessions.stores.memory",
    "wsgi_sessions.stores.sqlite",
    "wsgi_sessions.stores.redis",
    "wsgi_sessions.stores.redis_urls",
    "wsgi_sessions.stores.postgresql",
    "wsgi_sessions.stores.mysql",
    "wsgi_sessions.integrations.pyramid",
    "wsgi_sessions.integrations.bottle",
    "wsgi_sessions.integrations.falcon",
    "wsgi_sessions.integrations.paste",
    "wsgi_sessions.cli",
]


def test_every_public_module_is_listed_here() -> None:
    package = Path(wsgi_sessions.__file__).parent
    found = {
        "wsgi_sessions." + ".".join(p.relative_to(package).with_suffix("").parts)
        for p in package.rglob("*.py")
        if not any(part.startswith("_") for part in p.relative_to(package).parts)
    }
    found |= {"wsgi_sessions.stores", "wsgi_sessions.integrations"}
    found = {name.removesuffix(".__init__") for name in found}
    assert found - {"wsgi_sessions.integrations"} == set(PUBLIC_MODULES)


def test_the_api_reference_documents_every_public_name(built: Path) -> None:
    import importlib

    documented = set().union(*inventory(built).values())
    missing = [
        f"wsgi_sessions.{name}"
        for name in wsgi_sessions.__all__
        if f"wsgi_sessions.{name}" not in documented
    ]
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            top_level = name in wsgi_sessions.__all__ and getattr(wsgi_sessions, name) is getattr(
                module, name
            )
            if f"{module_name}.{name}" not in documented and not top_level:
                missing.append(f"{module_name}.{name}")
    assert missing == []


def test_the_settings_reference_is_built_from_the_code(built: Path) -> None:
    settings = inventory(built)["std:setting"]
    assert settings == {row.name for row in settings_table.code_settings()}
    page = (built / "settings.html").read_text()
    assert "SESSION_COOKIE_SECURE" in page


def test_the_guides_show_the_examples_in_full(built: Path) -> None:
    for guide, example in [
        ("wsgi", "wsgi_app.py"),
        ("flask", "flask_app.py"),
        ("pyramid", "pyramid_app.py"),
        ("bottle", "bottle_app.py"),
        ("falcon", "falcon_app.py"),
        ("pastedeploy", "pyramid.ini"),
    ]:
        page = (built / "frameworks" / f"{guide}.html").read_text()
        text = html.unescape(re.sub(r"<[^>]+>", "", page))
        for line in (ROOT / "examples" / example).read_text().splitlines():
            assert line.strip() in text, (guide, line)


def test_the_changelog_is_in_the_site_and_has_this_version(built: Path) -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## {re.escape(wsgi_sessions.__version__)}\b", changelog, re.M)
    assert wsgi_sessions.__version__ in (built / "changelog.html").read_text()


def test_the_cache_control_examples_are_what_the_merge_gives() -> None:
    from wsgi_sessions._cache_control import private_cache_control

    text = (DOCS / "caching.md").read_text()
    examples = re.findall(r"`([^`]+)` becomes `([^`]+)`", text)
    assert examples
    for given, merged in examples:
        assert private_cache_control([given]) == merged
    assert private_cache_control([]) == "private"
    assert private_cache_control(["no-store"]) == "no-store, private"


def test_the_encrypted_cookie_is_unreadable_as_the_page_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("cryptography")
    (snippet, _) = fenced(DOCS / "encryption.md", "python")
    namespace: dict[str, t.Any] = {"__name__": "docs_snippet"}
    monkeypatch.setenv("SECRET_KEY", "docs-snippet-" + "k" * 32)
    exec(compile(snippet, "snippet", "exec"), namespace)
    cookie = webtest.TestApp(namespace["application"]).get("/").headers["Set-Cookie"]
    value = cookie.split(";")[0].split("=", 1)[1]
    assert "editor" not in value and "role" not in value
    decoded = base64.urlsafe_b64decode(value.lstrip(".") + "=" * (-len(value.lstrip(".")) % 4))
    assert b"editor" not in decoded and b"role" not in decoded
