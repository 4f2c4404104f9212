"""``{bench-plots}``: every PNG under bench/, or a sentence saying there is none yet.

The plots are made by the benchmark scripts, not by the docs build, so the
page shows what exists when the site is built and never fails for a plot
that has not been made.
"""

from __future__ import annotations

import typing as t
from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

if t.TYPE_CHECKING:
    from sphinx.application import Sphinx

NO_PLOTS = "No plot has been generated under `bench/` yet; the tables below are the results."


def plots(bench: Path) -> list[Path]:
    return sorted(bench.rglob("*.png"))


class BenchPlots(SphinxDirective):
    def run(self) -> list[nodes.Node]:
        srcdir = Path(self.env.srcdir)
        found = plots(srcdir.parent / "bench")
        lines = [NO_PLOTS] if not found else []
        for plot in found:
            self.env.note_dependency(str(plot))
            relative = Path("..") / plot.relative_to(srcdir.parent)
            title = plot.stem.replace("_", " ").replace("-", " ")
            lines += [
                f"```{{figure}} {relative.as_posix()}",
                f":alt: {title}",
                "",
                title,
                "```",
                "",
            ]
        container = nodes.container()
        self.state.nested_parse(StringList(lines), self.content_offset, container)
        return container.children


def setup(app: Sphinx) -> dict[str, t.Any]:
    app.add_directive("bench-plots", BenchPlots)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
