"""The sync engine: provider changes -> one store transaction per calendar pass.

It never knows which backend it talks to: every provider speaks the
``Provider`` protocol. A pass asks for the changes since the stored cursor
(none when the rolling window moved, or when forced), retries once from
scratch when the cursor expired, refuses a sudden wipe, and records the
outcome. A failing calendar only records its error; the others go on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from calsync.clock import Clock
from calsync.errors import (
    CalsyncError,
    CursorExpiredError,
    ProviderAuthError,
    SyncRefusedError,
)
from calsync.model import CalendarRef, ChangeSummary, OutboxEvent, TimeSpan
from calsync.providers.base import ChangeBatch, Provider
from calsync.scheduler.announce import SYNC_FAILED_AFTER, Announcer
from calsync.store import Store

log = logging.getLogger(__name__)
WINDOW_SLACK = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class SyncResult:
    ref: CalendarRef
    summary: ChangeSummary = field(default_factory=ChangeSummary)
    full: bool = False
    error: str | None = None
    failures: int = 0
    skipped: bool = False  # another daemon instance holds this calendar's lease

    @property
    def ok(self) -> bool:
        return self.error is None


def rolling_window(now: datetime, horizon_days: int) -> TimeSpan:
    """``[yesterday, today + horizon + slack]`` in whole UTC days.

    The slack lets a synced window serve for a week before the calendar is
    fetched anew for a later one (``covers``), instead of every day.
    """
    today = datetime.combine(now.astimezone(UTC).date(), datetime.min.time(), tzinfo=UTC)
    end = today + timedelta(days=horizon_days + 1) + WINDOW_SLACK
    return TimeSpan(today - timedelta(days=1), end)


def covers(window: TimeSpan | None, now: datetime, horizon_days: int) -> bool:
    """Whether a synced window still spans from yesterday to the end of the horizon."""
    if window is None:
        return False
    needed = rolling_window(now, horizon_days)
    return window.start <= needed.start and window.end >= needed.end - WINDOW_SLACK


class SyncEngine:
    def __init__(
        self,
        store: Store,
        providers: Mapping[str, Provider],
        clock: Clock,
        *,
        horizon_days: int,
        provider_names: Mapping[str, str] | None = None,
        announcer: Announcer | None = None,
        instance: str | None = None,
        lease: timedelta = timedelta(minutes=5),
    ) -> None:
        """``instance`` names this daemon among several sharing one database; with it,
        each calendar is synced only by the instance holding its lease (``lease`` long,
        renewed every pass, taken over once a dead instance's lease ran out)."""
        self._announcer = announcer
        self.instance = instance
        self.lease_ttl = lease
        # called after every pass with (calendar, seconds, error code or None): metrics
        self.on_pass: Callable[[str, float, str | None], None] | None = None
        self._store = store
        self._providers = providers
        self._clock = clock
        self._horizon_days = horizon_days
        self._provider_names = provider_names or {}
        self.unresolved: dict[str, str] = {}  # account -> why its calendars could not be listed
        self._needs_reauth = {
            a.name for a in store.calendars.account_statuses() if a.status != "ok"
        }

    def resolve(self, refs: Iterable[CalendarRef]) -> list[CalendarRef]:
        """The concrete calendars of ``refs`` (wildcards asked of the provider), registered."""
        resolved: dict[CalendarRef, tuple[str, str | None]] = {}
        self.unresolved = {}
        for ref in refs:
            if ref.is_wildcard:
                resolved.update(self._expand(ref.account))
            else:
                resolved.setdefault(ref, ("", None))
        for ref, (name, timezone) in resolved.items():
            self._store.calendars.ensure(ref, name=name, timezone=timezone)
        return sorted(resolved, key=str)

    def _expand(self, account: str) -> dict[CalendarRef, tuple[str, str | None]]:
        try:
            infos = self._providers[account].list_calendars()
        except CalsyncError as err:
            known = self._store.calendars.known(account)
            if not known:
                self.unresolved[account] = err.message
            log.warning(
                "calendars account=%s unavailable, using %d known error=%r",
                account, len(known), err.message,
            )  # fmt: skip
            return dict.fromkeys(known, ("", None))
        return {CalendarRef(account, i.id): (i.name, i.timezone) for i in infos}

    def sync(self, ref: CalendarRef, *, full: bool = False, requested: bool = False) -> SyncResult:
        """One pass over one calendar; never raises for provider or data trouble.

        Under a lease held by another instance the pass is skipped; if it was
        ``requested`` (a push), the owner is asked to sync instead.
        """
        now = self._clock.now()
        if self.instance is not None and not self._store.calendars.lease(
            ref, self.instance, now, self.lease_ttl
        ):
            if requested:
                self._store.calendars.request_sync(ref, now)
            return SyncResult(ref, skipped=True)
        started = time.monotonic()
        try:
            summary, was_full = self._pass(ref, now, force_full=full)
        except CalsyncError as err:
            self._observe(ref, started, err.code)
            return self._failed(ref, err, now)
        self._account_ok(ref.account, now)
        self._observe(ref, started, None)
        ms = (time.monotonic() - started) * 1000
        log.info(
            "sync calendar=%s full=%s added=%d changed=%d removed=%d ms=%.0f",
            ref, was_full, summary.added, summary.changed, summary.removed, ms,
        )  # fmt: skip
        return SyncResult(ref, summary, full=was_full)

    def _pass(
        self, ref: CalendarRef, now: datetime, *, force_full: bool
    ) -> tuple[ChangeSummary, bool]:
        provider = self._providers[ref.account]
        state = self._store.calendars.cursor(ref)
        if force_full or state.window is None or not covers(state.window, now, self._horizon_days):
            window, cursor = rolling_window(now, self._horizon_days), None
        else:
            window, cursor = state.window, state.cursor
        try:
            batch = provider.fetch_changes(ref.calendar, cursor, window)
        except CursorExpiredError:
            log.info("sync calendar=%s cursor expired; full resync", ref)
            batch = provider.fetch_changes(ref.calendar, None, window)
        if not force_full:
            self._refuse_wipe(ref, batch)
        return self._store.events.apply(ref, batch, window, now), batch.full

    def _refuse_wipe(self, ref: CalendarRef, batch: ChangeBatch) -> None:
        if not batch.full or batch.events:
            return
        stored = self._store.events.count(ref)
        if stored:
            raise SyncRefusedError(
                f"{ref} suddenly returned no events although {stored} are stored; "
                f"kept them. If the calendar really is empty now, run "
                f"`calsync sync --account {ref.account} --full`"
            )

    def _failed(self, ref: CalendarRef, err: CalsyncError, now: datetime) -> SyncResult:
        failures = self._store.calendars.record_failure(
            ref, err.message, now, self._announce_failure(ref, err.message)
        )
        if isinstance(err, ProviderAuthError):
            provider = self._provider_names.get(ref.account, "")
            event = None
            if self._announcer is not None and ref.account not in self._needs_reauth:
                event = self._announcer.reauth_required(ref.account, provider, err.message)
            self._needs_reauth.add(ref.account)
            self._store.calendars.set_account_status(
                ref.account, provider, "reauth_required", err.message, now, event
            )
        log.warning(
            "sync calendar=%s failed error=%s failures=%d message=%r",
            ref, err.code, failures, err.message,
        )  # fmt: skip
        return SyncResult(ref, error=err.message, failures=failures)

    def _announce_failure(
        self, ref: CalendarRef, message: str
    ) -> Callable[[int], OutboxEvent | None] | None:
        """``sync.failed`` once a calendar failed several passes in a row, not on every blip."""
        announcer = self._announcer
        if announcer is None:
            return None
        return lambda n: (
            announcer.sync_failed(str(ref), message, n) if n == SYNC_FAILED_AFTER else None
        )

    def _observe(self, ref: CalendarRef, started: float, error: str | None) -> None:
        if self.on_pass is not None:
            self.on_pass(str(ref), time.monotonic() - started, error)

    def use_providers(
        self, providers: Mapping[str, Provider], provider_names: Mapping[str, str]
    ) -> None:
        """Sync through other providers from now on (a config reload); passes under way
        finish with the ones they started with."""
        self._providers, self._provider_names = providers, provider_names

    def release_leases(self) -> None:
        if self.instance is not None:
            self._store.calendars.release_leases(self.instance)

    def requested(self) -> list[CalendarRef]:
        """Calendars this instance holds that another instance asked to sync."""
        return self._store.calendars.requested(self.instance) if self.instance else []

    def _account_ok(self, account: str, now: datetime) -> None:
        if account in self._needs_reauth:
            self._needs_reauth.discard(account)
            self._store.calendars.set_account_status(
                account, self._provider_names.get(account, ""), "ok", None, now
            )
