"""Push intake: opening, renewing and closing provider channels, and acting on notifications.

With ``daemon.public_url`` set, every synced calendar whose provider can
push gets a channel pointing at ``<public_url>/push/<provider>``, with a
random secret that each notification must carry. Channels are renewed a
day before they expire (a new one first, then the old one closed), closed
when their calendar leaves the config and on shutdown. A notification only
moves that calendar's next sync to now; the sync itself stays the one
path into the store. Without a public URL, polling alone keeps caches fresh.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta

from calsync.clock import Clock
from calsync.errors import CalsyncError
from calsync.model import CalendarRef
from calsync.providers.base import Capability, Provider, PushChannel, Subscriber
from calsync.providers.calcom import webhooks as calcom_webhooks
from calsync.store import Store

log = logging.getLogger(__name__)
RENEW_BEFORE = timedelta(days=1)


class PushManager:
    def __init__(
        self,
        store: Store,
        providers: Mapping[str, Provider],
        provider_names: Mapping[str, str],
        clock: Clock,
        *,
        public_url: str,
        on_change: Callable[[CalendarRef], bool],
    ) -> None:
        self._store = store
        self._providers = providers
        self._names = provider_names
        self._clock = clock
        self._public_url = public_url.rstrip("/")
        self._on_change = on_change

    def use(self, providers: Mapping[str, Provider], provider_names: Mapping[str, str]) -> None:
        self._providers, self._names = providers, provider_names

    def refresh(self, wanted: Iterable[CalendarRef]) -> None:
        """Make sure every wanted calendar has a channel that lives another day; close the rest."""
        wanted = {ref for ref in wanted if self._subscriber(ref.account) is not None}
        horizon = self._clock.now() + RENEW_BEFORE
        channels = self._store.channels.all()
        covered = {ref for ref, channel in channels if channel.expires_at > horizon}
        for ref in sorted(wanted - covered, key=str):
            self._open(ref)
        for ref, channel in channels:
            if ref not in wanted or channel.expires_at <= horizon:
                self._close(ref, channel)

    def notify(self, channel_id: str, token: str, *, changed: bool = True) -> CalendarRef | None:
        """The calendar a genuine notification is about, else None; if ``changed``, its
        next sync moves to now."""
        found = self._store.channels.get(channel_id)
        if found is None:
            return None
        ref, channel = found
        if not hmac.compare_digest(channel.token.encode(), token.encode()):
            return None
        if changed:
            self._on_change(ref)
        return ref

    def reopen(self, channel_id: str, token: str) -> CalendarRef | None:
        """Replace a channel the provider removed or wants re-authorised, and catch up."""
        found = self._store.channels.get(channel_id)
        if found is None or not hmac.compare_digest(found[1].token.encode(), token.encode()):
            return None
        ref, channel = found
        self._close(ref, channel)
        self._open(ref)
        self._on_change(ref)  # notifications may have been missed meanwhile
        return ref

    def close_all(self) -> None:
        for ref, channel in self._store.channels.all():
            self._close(ref, channel)

    def _open(self, ref: CalendarRef) -> None:
        subscriber = self._subscriber(ref.account)
        assert subscriber is not None
        address = f"{self._public_url}/push/{self._names[ref.account]}"
        try:
            channel = subscriber.open_channel(ref.calendar, address, secrets.token_urlsafe(32))
        except CalsyncError as err:
            log.warning("push calendar=%s cannot open a channel: %s (polling goes on)", ref, err)
            return
        self._store.channels.add(ref.account, channel, self._clock.now())
        log.info("push calendar=%s channel opened until=%s", ref, channel.expires_at.isoformat())

    def _close(self, ref: CalendarRef, channel: PushChannel) -> None:
        subscriber = self._subscriber(ref.account)
        try:
            if subscriber is not None:
                subscriber.close_channel(channel)
        except CalsyncError as err:
            log.warning("push calendar=%s cannot close channel: %s", ref, err)
        self._store.channels.remove(channel.id)

    def _subscriber(self, account: str) -> Subscriber | None:
        provider = self._providers.get(account)
        if provider is None or Capability.PUSH not in provider.capabilities:
            return None
        return provider  # type: ignore[return-value]


class CalcomIntake:
    """Cal.com's signed webhooks: verified (HMAC, per account secret), deduplicated, acted on.

    Cal.com sends no channel id, so the signature itself tells which
    account a delivery is for; that account's calendars sync now.
    """

    def __init__(self, secrets: Mapping[str, str], on_account_change: Callable[[str], int]) -> None:
        self._secrets = dict(secrets)
        self._on_change = on_account_change
        self._recent = calcom_webhooks.RecentDeliveries()

    def use(self, secrets: Mapping[str, str]) -> None:
        self._secrets = dict(secrets)

    def receive(self, body: bytes, signature: str | None) -> str:
        """The account a genuine delivery is for; raises AuthError for anything unsigned."""
        account = calcom_webhooks.account_for(body, signature, self._secrets)
        delivery = calcom_webhooks.parse_delivery(body)
        if self._recent.first_time(delivery.dedupe_key):
            self._on_change(account)
        return account
