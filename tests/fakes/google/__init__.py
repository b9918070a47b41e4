"""Internals of FakeGoogle, the Google Calendar v3 + OAuth fake (see tests/fakes/google_server.py).

Import ``FakeGoogle`` from ``tests.fakes.google_server``; the modules here are
its parts: ``discovery`` (routes and parameter rules from the bundled discovery
document), ``store`` (events, exceptions, tombstones, change numbers),
``listing`` (which items a list returns), ``paging`` (page and sync tokens),
``freebusy``, ``oauth``, ``push`` (watch channels and delivery), ``api`` (the
dispatcher), ``handler`` (HTTP plumbing) and small helpers (``errors``,
``messages``, ``wire``, ``recurrence``).
"""
