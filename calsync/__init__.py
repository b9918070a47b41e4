"""calsync: a local availability cache and booking daemon for calendars."""

__version__ = "0.1.0"
