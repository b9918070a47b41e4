"""The background schedule: one APScheduler job per calendar, every sync interval.

Jobs carry jitter so calendars do not all hit their providers at once,
never overlap themselves (``max_instances=1``), and coalesce missed runs.
Another job re-lists the accounts' calendars every interval, so a calendar
that appears behind a ``account:*`` reference (or whose account could not
be reached at start) is picked up; with push on, a third job keeps the push
channels open (hourly, first just after start). A push notification moves a
calendar's next run to now.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from calsync.clock import Clock
from calsync.model import CalendarRef
from calsync.scheduler.push import PushManager
from calsync.scheduler.sync import SyncEngine

log = logging.getLogger(__name__)
WORKERS = 4
FIRST_PASS_SPREAD = timedelta(seconds=5)
REFRESH_JOB = "calendars"
PUSH_JOB = "push"
REQUESTS_JOB = "requests"
SERVICE_JOBS = (REFRESH_JOB, PUSH_JOB, REQUESTS_JOB)
REQUESTS_EVERY = timedelta(seconds=2)
PUSH_DELAY = timedelta(seconds=2)
PUSH_REFRESH = timedelta(hours=1)


def job_trigger(interval: timedelta) -> IntervalTrigger:
    """Every ``interval``, moved by up to 30 s of jitter (a tenth for short intervals), so
    calendars do not all hit their providers at once, and none waits past interval + 30 s."""
    jitter = min(30, int(interval.total_seconds() / 10))
    return IntervalTrigger(seconds=interval.total_seconds(), jitter=jitter or None)


class Daemon:
    def __init__(
        self,
        engine: SyncEngine,
        wanted: list[CalendarRef],
        interval: timedelta,
        clock: Clock,
        push: PushManager | None = None,
    ) -> None:
        self._engine = engine
        self._push = push
        self._lock = threading.Lock()
        self._running: set[CalendarRef] = set()
        self._again: set[CalendarRef] = set()  # asked for while running: one more pass
        self._asked: set[CalendarRef] = set()  # the next pass was requested (a push)
        self._wanted = wanted
        self._interval = interval
        self._clock = clock
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(WORKERS)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": max(1, int(interval.total_seconds())),
            },
        )

    def start(self) -> None:
        """Schedule every calendar (first passes now, spread over a few seconds) and start."""
        self.refresh()
        self._scheduler.add_job(
            self.refresh,
            IntervalTrigger(seconds=self._interval.total_seconds()),
            id=REFRESH_JOB,
            name="list calendars",
        )
        if self._engine.instance is not None:  # syncs other instances asked this one for
            self._scheduler.add_job(
                self._forward_requests,
                IntervalTrigger(seconds=REQUESTS_EVERY.total_seconds()),
                id=REQUESTS_JOB,
                name="requested syncs",
            )
        if self._push is not None:  # shortly after start: the HTTP server must be listening
            push = self._push
            self._scheduler.add_job(
                lambda: push.refresh(self.scheduled),
                IntervalTrigger(seconds=PUSH_REFRESH.total_seconds()),
                id=PUSH_JOB,
                name="push channels",
                next_run_time=self._clock.now() + PUSH_DELAY,
            )
        self._scheduler.start()
        log.info("scheduler started calendars=%d interval=%s", len(self.scheduled), self._interval)

    @property
    def scheduled(self) -> list[CalendarRef]:
        return [job.args[0] for job in self._scheduler.get_jobs() if job.id not in SERVICE_JOBS]

    def refresh(self) -> None:
        """Add a job for every wanted calendar that has none yet."""
        current = {str(ref) for ref in self.scheduled}
        new = [ref for ref in self._engine.resolve(self._wanted) if str(ref) not in current]
        now = self._clock.now()
        for i, ref in enumerate(new):
            self._scheduler.add_job(
                self._run,
                job_trigger(self._interval),
                args=[ref],
                id=str(ref),
                name=f"sync {ref}",
                next_run_time=now + FIRST_PASS_SPREAD * (i / len(new)),
            )
        if new and self._scheduler.running:
            log.info("scheduler added calendars=%s", ",".join(map(str, new)))

    def use_wanted(self, wanted: list[CalendarRef]) -> None:
        """Sync another set of calendars from now on (a config reload)."""
        self._wanted = wanted
        keep = {str(ref) for ref in self._engine.resolve(wanted)}
        for ref in self.scheduled:
            if str(ref) not in keep:
                self._scheduler.remove_job(str(ref))
        self.refresh()

    def _run(self, ref: CalendarRef) -> None:
        """One pass, and another right after if a change was announced during it."""
        again = True
        while again:
            with self._lock:
                self._running.add(ref)
            with self._lock:
                requested = ref in self._asked
                self._asked.discard(ref)
            try:
                self._engine.sync(ref, requested=requested)
            finally:
                with self._lock:
                    self._running.discard(ref)
                    again = ref in self._again
                    self._again.discard(ref)

    def sync_now(self, ref: CalendarRef) -> bool:
        """Run one calendar's next pass now (or right after the one under way).

        False if the calendar is not scheduled.
        """
        with self._lock:
            self._asked.add(ref)
            if ref in self._running:
                self._again.add(ref)
                return True
        try:
            self._scheduler.modify_job(str(ref), next_run_time=self._clock.now())
        except JobLookupError:
            return False
        return True

    def sync_account_now(self, account: str) -> int:
        """Every calendar of one account syncs now; returns how many."""
        refs = [ref for ref in self.scheduled if ref.account == account]
        for ref in refs:
            self.sync_now(ref)
        return len(refs)

    def sync_all_now(self) -> int:
        """Move every calendar's next pass to now; returns how many calendars."""
        refs = self.scheduled
        for ref in refs:
            self.sync_now(ref)
        return len(refs)

    def _forward_requests(self) -> None:
        for ref in self._engine.requested():
            self.sync_now(ref)

    def stop(self) -> None:
        if self._push is not None:
            self._push.close_all()
        self._scheduler.shutdown(wait=True)
        self._engine.release_leases()  # the others take over without waiting
        log.info("scheduler stopped")
