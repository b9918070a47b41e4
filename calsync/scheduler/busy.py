"""The one busy rule: which events block time, and their merged busy spans.

Owns the decision "does this event make its owner busy?" and the merging
of busy time into sorted, disjoint spans (the free/busy answer and the
input of slot finding). Pure: no I/O, no clock, no store or provider
access, no buffers (buffers belong to slot finding, free/busy shows raw
busy time). All-day events arrive as UTC spans that already cover their
local days, so they need nothing special here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from calsync.model import Event, EventStatus, TimeSpan, Transparency


def is_busy(event: Event, *, tentative_busy: bool = True) -> bool:
    """Whether ``event`` blocks its calendar's owner.

    Busy means: not cancelled, opaque, not declined by the owner, and not
    tentative unless ``tentative_busy`` (the resource's setting) says so.
    """
    if event.status is EventStatus.CANCELLED or event.declined:
        return False
    if event.transparency is not Transparency.OPAQUE:
        return False
    return event.status is not EventStatus.TENTATIVE or tentative_busy


def merge_bounds(bounds: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """``(start, end)`` pairs sorted, with overlapping, nested and touching ones joined.

    The allocation-light core of :func:`merge_spans`, for callers that only
    need the instants (slot finding bisects over them).
    """
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(bounds):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def merge_spans(spans: Iterable[TimeSpan]) -> list[TimeSpan]:
    """The spans sorted, with overlapping, nested and touching spans merged into one."""
    return [TimeSpan(start, end) for start, end in merge_bounds((s.start, s.end) for s in spans)]


def busy_spans(
    events: Iterable[Event],
    *,
    tentative_busy: bool = True,
    within: TimeSpan | None = None,
) -> list[TimeSpan]:
    """The merged busy time of ``events``, clipped to ``within`` when given."""
    merged = merge_spans(e.span for e in events if is_busy(e, tentative_busy=tentative_busy))
    if within is None:
        return merged
    clipped = (span.clip(within) for span in merged)
    return [span for span in clipped if span is not None]
