"""Sphinx glue for the settings reference (the data is in settings_table.py).

``{settings-reference}`` renders every setting of ``wsgi_sessions.settings``
with its default and config key from the code and its description from the
directive's body; a mismatch is a build warning, an error under ``-W``. Each
setting is a ``setting`` object: ``{setting}`cookie_secure``` links to it.
"""

from __future__ import annotations

import typing as t

import settings_table
from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

if t.TYPE_CHECKING:
    from sphinx.application import Sphinx

logger = logging.getLogger(__name__)


class SettingsReference(SphinxDirective):
    has_content = True

    def run(self) -> list[nodes.Node]:
        try:
            descriptions = settings_table.parse_descriptions(self.content)
        except ValueError as error:
            raise self.error(str(error)) from None
        for problem in settings_table.check(descriptions):
            logger.warning(problem, location=self.get_location())
        container = nodes.container()
        text = settings_table.markdown(descriptions)
        self.state.nested_parse(
            StringList(text.splitlines(), source=self.get_source_info()[0]),
            self.content_offset,
            container,
        )
        return container.children


def setup(app: Sphinx) -> dict[str, t.Any]:
    app.add_object_type("setting", "setting", indextemplate="pair: %s; setting")
    app.add_directive("settings-reference", SettingsReference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
