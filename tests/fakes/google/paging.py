"""Page tokens over result snapshots, and sync tokens: both opaque to clients.

A list's first page computes the full result once and keeps it; later pages
(same query, any ``maxResults``) slice that snapshot, so a page can be re-sent
after a failure and changes made meanwhile wait for the next sync. A sync
token names a calendar, its invalidation epoch, the change number of the
snapshot and the query shape it was minted for; anything else is a 410.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import bad_parameter, full_sync_required

NOT_IN_FINGERPRINT = frozenset(
    {"pageToken", "maxResults", "alt", "fields", "prettyPrint", "quotaUser", "key", "userIp"}
    | {"oauth_token"}
)


def _encode(payload: list[Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(token: str) -> list[Any]:
    try:
        padded = token + "=" * (-len(token) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as err:
        raise ValueError("undecodable token") from err
    if not isinstance(value, list):
        raise ValueError("not a token")
    return value


def mint_sync_token(kind: str, cal_id: str, epoch: int, seq: int, shape: list[Any]) -> str:
    return _encode([kind, cal_id, epoch, seq, shape])


def read_sync_token(
    token: str, kind: str, cal_id: str, epoch: int, current_seq: int, shape: list[Any]
) -> int:
    """The change number a token stands for; 410 when it is not (or no longer) valid here."""
    try:
        got_kind, got_cal, got_epoch, seq, got_shape = _decode(token)
    except ValueError as err:
        raise full_sync_required() from err
    valid = (got_kind, got_cal, got_epoch) == (kind, cal_id, epoch)
    if not valid or not isinstance(seq, int) or seq > current_seq:
        raise full_sync_required()
    if got_shape != shape:
        raise bad_parameter(
            "syncToken",
            "FakeGoogle: this syncToken was issued for a list with other singleEvents/eventTypes "
            f"({got_shape}, now {shape}); Google calls that undefined behaviour.",
        )
    return seq


@dataclass
class _Snapshot:
    key: tuple[Any, ...]
    items: list[dict[str, Any]]
    sync_token: str | None
    empty_pages: bool


@dataclass
class Pager:
    """Result snapshots behind page tokens; a page token can be re-sent (retries)."""

    page_cap: int | None = None
    empty_pages: bool = False
    _snapshots: list[_Snapshot] = field(default_factory=list)

    def page(
        self,
        key: tuple[Any, ...],
        page_token: str | None,
        max_results: int,
        compute: Callable[[], tuple[list[dict[str, Any]], str | None]],
    ) -> tuple[list[dict[str, Any]], str | None, str | None]:
        """``(items, nextPageToken, nextSyncToken)`` for one page."""
        if page_token is None:
            items, sync_token = compute()
            self._snapshots.append(_Snapshot(key, items, sync_token, self.empty_pages))
            index, stage, offset = len(self._snapshots) - 1, "lead", 0
            if not self.empty_pages:
                stage = "body"
        else:
            index, stage, offset = self._read(page_token, key)
        snap = self._snapshots[index]
        size = max_results if self.page_cap is None else min(max_results, self.page_cap)
        if stage == "lead":
            return [], _encode(["page", index, "body", 0]), None
        if stage == "tail":
            return [], None, snap.sync_token
        chunk = snap.items[offset : offset + size]
        after = offset + len(chunk)
        if after < len(snap.items):
            return chunk, _encode(["page", index, "body", after]), None
        if snap.empty_pages:
            return chunk, _encode(["page", index, "tail", after]), None
        return chunk, None, snap.sync_token

    def _read(self, token: str, key: tuple[Any, ...]) -> tuple[int, str, int]:
        try:
            kind, index, stage, offset = _decode(token)
            snap = self._snapshots[index] if kind == "page" and isinstance(index, int) else None
        except (ValueError, IndexError, TypeError):
            snap = None
        if snap is None or snap.key != key:
            raise bad_parameter("pageToken")
        return index, stage, offset


def fingerprint(endpoint: str, cal_id: str, params: dict[str, Any]) -> tuple[Any, ...]:
    kept = sorted((k, repr(v)) for k, v in params.items() if k not in NOT_IN_FINGERPRINT)
    return (endpoint, cal_id, tuple(kept))
