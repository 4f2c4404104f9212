"""Sphinx configuration: Furo, MyST Markdown, autodoc; nothing fetched at build time."""

from __future__ import annotations

import sys
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
