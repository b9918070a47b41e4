"""Configured accounts -> Provider instances, and the calendars the resources need.

The one place that knows which provider class serves which ``provider =``
value. Providers get their HTTP session injected from here.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import requests

from calsync.config import AccountSettings, Settings
from calsync.errors import ConfigError
from calsync.model import CalendarRef
from calsync.providers.base import Provider
from calsync.providers.ics import IcsProvider

USER_AGENT = "calsync (+https://github.com/calsync/calsync)"


def new_session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    return session


def open_providers(settings: Settings, session: requests.Session) -> dict[str, Provider]:
    """One provider per configured account; unsupported providers are one ConfigError."""
    providers: dict[str, Provider] = {}
    problems: list[str] = []
    for name, account in settings.accounts.items():
        if account.provider == "ics":
            providers[name] = _ics(settings, account, session)
        else:
            problems.append(
                f"accounts.{name}.provider: {account.provider!r} is not supported by this "
                "version of calsync yet; use an ics account"
            )
    if problems:
        raise ConfigError(problems)
    return providers


def _ics(settings: Settings, account: AccountSettings, session: requests.Session) -> IcsProvider:
    assert account.url is not None  # config requires it
    return IcsProvider(
        account.url,
        session=session,
        default_timezone=ZoneInfo(account.timezone or _zone_of_users(settings, account.name)),
        name=account.name,
    )


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
