"""Thin adapters that make the one middleware feel native to a framework.

Each module imports its framework, so none is imported by ``wsgi_sessions``
itself; they add no session logic of their own (opening and saving stay in
the session interface).
"""
