"""ICS feeds (a file or an http(s) URL) as a read-only calendar provider.

``provider`` fetches and caches by validators; ``_wire`` (private) turns ICS
text into domain events. Nothing outside this package imports icalendar.
"""

from calsync.providers.ics.provider import CALENDAR_ID, IcsProvider, describe_source

__all__ = ["CALENDAR_ID", "IcsProvider", "describe_source"]
