"""Importing wsgi_sessions must not import a framework: they are extras."""

from __future__ import annotations

import subprocess
import sys

FRAMEWORKS = ("flask", "pyramid", "bottle", "falcon", "paste", "zope", "webob", "redis")


def test_importing_the_library_imports_no_framework() -> None:
    # Compared with what the interpreter had before: PasteDeploy's namespace
    # .pth file puts "paste" in sys.modules at start-up, before any import.
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import wsgi_sessions, wsgi_sessions.integrations\n"
        f"print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in {FRAMEWORKS!r}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
    # the check itself can fail: importing an adapter does pull its framework in
    probe = code.replace("wsgi_sessions.integrations\n", "wsgi_sessions.integrations.bottle\n")
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert "'bottle'" in result.stdout
