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

import typing as t

from wsgi_sessions import SessionConfig, SessionMiddleware

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

__all__ = ["filter_app_factory"]

_PREFIX = "session."


def filter_app_factory(
    app: WSGIApplication, global_conf: t.Mapping[str, str], **local_conf: str
) -> SessionMiddleware:
    """Wrap ``app`` in :class:`SessionMiddleware` configured by the filter's section."""
    settings: dict[str, str] = {}
    written: dict[str, str] = {}  # setting -> the key as the section wrote it
    for key, value in local_conf.items():
        name = key.removeprefix(_PREFIX)
        if name in written:
            raise ValueError(f"setting {name!r} is given twice in the [filter] section")
        written[name] = key
        settings[_PREFIX + name] = value
    # The prefix gives ini semantics (strings everywhere, fallbacks split on
    # spaces); messages name each setting as the section wrote it.
    config = SessionConfig(
        settings, prefix=_PREFIX, written_as=lambda name: written.get(name, name)
    )
    return SessionMiddleware(app, config)
