"""The ``calsync`` command line; one module per group of commands."""

from calsync.cli import accounts, bookings, daemon, doctor, keys, lookups, webhooks
from calsync.cli import tools as tools  # registers `calsync tools`
from calsync.cli._app import main

__all__ = ["accounts", "bookings", "daemon", "doctor", "keys", "lookups", "main", "webhooks"]
