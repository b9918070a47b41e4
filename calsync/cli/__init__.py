"""The ``calsync`` command line; one module per group of commands."""

from calsync.cli import bookings, daemon, keys, lookups
from calsync.cli._app import main

__all__ = ["bookings", "daemon", "keys", "lookups", "main"]
