"""Configured accounts -> Provider instances, and the calendars the resources need.

The one place that knows which provider class serves which ``provider =``
value. Providers get their HTTP session injected from here, and the callable
told of every request they send (``observe``: the daemon's metrics).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import partial
from zoneinfo import ZoneInfo

import requests

from calsync.config import AccountSettings, Settings
from calsync.errors import CalsyncError, ConfigError
from calsync.model import CalendarRef
from calsync.providers.base import BookingWriter, Capability, Provider
from calsync.providers.calcom import auth as calcom_auth
from calsync.providers.calcom.provider import CalcomProvider
from calsync.providers.counting import Observe
from calsync.providers.google import auth as google_auth
from calsync.providers.google.provider import GoogleProvider
from calsync.providers.ics import IcsProvider
from calsync.providers.outlook import auth as outlook_auth
from calsync.providers.outlook.provider import OutlookProvider

log = logging.getLogger(__name__)
USER_AGENT = "calsync (+https://github.com/calsync/calsync)"


def new_session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    return session


def open_providers(
    settings: Settings, session: requests.Session, observe: Observe | None = None
) -> dict[str, Provider]:
    """One provider per configured account; unsupported providers are one ConfigError.

    Credentials are read when first needed (and again after an auth failure),
    so the daemon starts without them and ``calsync status`` says which
    ``calsync auth`` command to run. ``observe(provider, outcome)`` is told of
    every HTTP request the providers send.
    """
    providers: dict[str, Provider] = {}
    problems: list[str] = []
    for name, account in settings.accounts.items():
        opener = _OPENERS.get(account.provider)
        if opener is None:
            problems.append(
                f"accounts.{name}.provider: {account.provider!r} is not supported by this "
                "version of calsync yet"
            )
            continue
        providers[name] = opener(settings, account, session, observe)
    if problems:
        raise ConfigError(problems)
    return providers


def booking_writers(providers: Mapping[str, Provider]) -> dict[str, BookingWriter]:
    return {
        name: provider  # type: ignore[misc]
        for name, provider in providers.items()
        if Capability.BOOK in provider.capabilities
    }


def _google(
    settings: Settings,
    account: AccountSettings,
    session: requests.Session,
    observe: Observe | None,
) -> GoogleProvider:
    path = google_auth.token_path(settings.daemon.state_dir, account.name)
    return GoogleProvider(
        partial(google_auth.load_credentials, path, account.name, account.token_uri),
        account=account.name,
        default_timezone=ZoneInfo(_zone_of_users(settings, account.name)),
        endpoint=account.endpoint,
        send_updates=account.send_updates,
        observe=observe,
    )


def _ics(
    settings: Settings,
    account: AccountSettings,
    session: requests.Session,
    observe: Observe | None,
) -> IcsProvider:
    assert account.url is not None  # config requires it
    return IcsProvider(
        account.url,
        session=session,
        default_timezone=ZoneInfo(account.timezone or _zone_of_users(settings, account.name)),
        name=account.name,
        observe=observe,
    )


def _outlook(
    settings: Settings,
    account: AccountSettings,
    session: requests.Session,
    observe: Observe | None,
) -> OutlookProvider:
    assert account.client_id is not None  # config requires it
    token = outlook_auth.TokenSource(
        outlook_auth.cache_path(settings.daemon.state_dir, account.name),
        account=account.name,
        client_id=account.client_id,
        http_client=session,
        tenant=account.tenant,
        authority=account.authority,
    )
    return OutlookProvider(
        token,
        account=account.name,
        session=session,
        default_timezone=ZoneInfo(_zone_of_users(settings, account.name)),
        endpoint=account.endpoint,
        observe=observe,
    )


def _calcom(
    settings: Settings,
    account: AccountSettings,
    session: requests.Session,
    observe: Observe | None,
) -> CalcomProvider:
    path = calcom_auth.key_path(settings.daemon.state_dir, account.name)
    return CalcomProvider(
        partial(calcom_auth.load_api_key, path, account.name),
        account=account.name,
        session=session,
        default_timezone=ZoneInfo(_zone_of_users(settings, account.name)),
        endpoint=account.endpoint,
        include_pending=account.include_pending,
        honour_slots=account.honour_slots,
        observe=observe,
    )


_Opener = Callable[[Settings, AccountSettings, requests.Session, Observe | None], Provider]
_OPENERS: dict[str, _Opener] = {
    "ics": _ics,
    "google": _google,
    "outlook": _outlook,
    "calcom": _calcom,
}


def webhook_secrets(settings: Settings) -> dict[str, str]:
    """The inbound-webhook secret of each Cal.com account that has one (unreadable: skipped)."""
    found: dict[str, str] = {}
    for name, account in settings.accounts.items():
        if account.provider == "calcom" and account.webhook_secret_file is not None:
            try:
                found[name] = calcom_auth.load_webhook_secret(account.webhook_secret_file, name)
            except CalsyncError as err:
                log.warning("push account=%s webhooks refused: %s", name, err.message)
    return found


def _zone_of_users(settings: Settings, account: str) -> str:
    """The zone of the first resource that checks ``account`` (floating times are read there)."""
    for resource in settings.resources.values():
        if any(ref.account == account for ref in resource.check):
            return resource.timezone.key
    return "UTC"


def checked_refs(settings: Settings, account: str | None = None) -> list[CalendarRef]:
    """Every calendar reference some resource checks, optionally of one account."""
    refs = {ref for r in settings.resources.values() for ref in r.check}
    return sorted((r for r in refs if account in (None, r.account)), key=str)
