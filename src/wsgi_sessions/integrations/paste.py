"""PasteDeploy: the ``egg:wsgi-sessions#session`` filter.

::

    [filter:session]
    use = egg:wsgi-sessions#session
    secret_key = %(session_secret)s
    cookie_secure = true

The section's keys are the settings' names, as strings; a ``session.`` prefix
is accepted too, so lines can be copied from a Pyramid ``[app:main]``. Every key
in the section is validated: a typo is an error at start-up, never ignored.
"""

from __future__ import annotations

import re
import typing as t

from wsgi_sessions import SessionMiddleware

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

__all__ = ["filter_app_factory"]

_PREFIX = "session."
_PREFIXED_NAME = re.compile(rf"(?<![\w.]){re.escape(_PREFIX)}(\w+)")


def filter_app_factory(
    app: WSGIApplication, global_conf: t.Mapping[str, str], **local_conf: str
) -> SessionMiddleware:
    """Wrap ``app`` in :class:`SessionMiddleware` configured by the filter's section."""
    settings: dict[str, str] = {}
    for key, value in local_conf.items():
        name = _PREFIX + key.removeprefix(_PREFIX)
        if name in settings:
            raise ValueError(f"setting {name!r} is given twice in the [filter] section")
        settings[name] = value
    # The prefix gives ini semantics: strings everywhere, fallbacks split on spaces.
    try:
        return SessionMiddleware(app, settings, prefix=_PREFIX)
    except (TypeError, ValueError) as exc:
        # Name settings as the section wrote them (the prefix is optional here),
        # which is what the user will search the file for.
        def as_written(match: re.Match[str]) -> str:
            return match[0] if match[0] in local_conf else match[1]

        message = _PREFIXED_NAME.sub(as_written, str(exc))
        if message == str(exc):
            raise
        raise type(exc)(message) from None
