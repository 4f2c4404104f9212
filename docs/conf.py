"""Sphinx configuration: Furo, MyST Markdown, autodoc; nothing fetched at build time."""

from __future__ import annotations

import sys
import typing as t
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "_ext"))
# The checkout's code, so a build documents what is in front of it even
# before `pip install -e .` (an installed copy would otherwise win).
sys.path.insert(0, str(HERE.parent / "src"))

import wsgi_sessions  # noqa: E402

project = "wsgi-sessions"
author = "the wsgi-sessions authors"
copyright = "the wsgi-sessions authors"
release = wsgi_sessions.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "settings_ref",
    "bench_plots",
]

# Markdown everywhere; `{directive}` fences, ```` ```python ```` blocks.
source_suffix = {".md": "markdown"}
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
# No network at build time: intersphinx is not loaded, so references to
# werkzeug or Flask render as plain text instead of being fetched.

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}

html_theme = "furo"
html_title = f"wsgi-sessions {release}"


def _public_bases(app: object, name: str, obj: object, options: object, bases: list[t.Any]) -> None:
    """Name a class's public base where its real one is private: a private
    base (ServerSideSession's, in wsgi_sessions._lazy_fields) is how the code
    is split, not part of the API, and has no page to link to."""
    for index, base in enumerate(bases):
        public = base
        while isinstance(public, type) and any(
            part.startswith("_") for part in public.__module__.split(".")
        ):
            public = public.__bases__[0]
        bases[index] = public


def setup(app: t.Any) -> None:
    app.connect("autodoc-process-bases", _public_bases)
