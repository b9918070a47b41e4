"""The one error tree of calsync.

Every layer raises only these. Each error carries a message written for a
person: what is wrong and what to change (a config key, an argument, a
command). Library errors are translated into these at the boundary where
they occur, with ``raise ... from err``.
"""

from __future__ import annotations


class CalsyncError(Exception):
    """Base of every error calsync raises on purpose."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(CalsyncError):
    """The configuration is invalid; ``problems`` lists every problem, each naming its key."""

    code = "config_invalid"

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        noun = "problem" if len(self.problems) == 1 else "problems"
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"invalid configuration ({len(self.problems)} {noun}):\n{lines}")


class InputError(CalsyncError):
    """A caller gave a bad value (time, range, zone, duration...)."""

    code = "invalid_input"


class MalformedRequestError(InputError):
    """A request body that is not the JSON it must be (HTTP 400)."""

    code = "invalid_json"


class NotFoundError(InputError):
    """A named thing (resource, booking, account, calendar) does not exist."""

    code = "not_found"


class StoreError(CalsyncError):
    """The database could not be reached or used."""

    code = "store_error"


class SyncRefusedError(CalsyncError):
    """A sync result looks wrong (e.g. a sudden wipe) and was not applied."""

    code = "sync_refused"


class ProviderError(CalsyncError):
    """A calendar provider failed; subclasses say how."""

    code = "provider_error"


class ProviderAuthError(ProviderError):
    """Credentials are missing, revoked or expired: the account needs `calsync auth`."""

    code = "reauth_required"


class RateLimitedError(ProviderError):
    """The provider asked us to slow down."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CursorExpiredError(ProviderError):
    """The stored sync cursor is no longer valid: one full resync is needed."""

    code = "cursor_expired"


class ProviderUnavailableError(ProviderError):
    """The provider could not be reached or answered with a server error."""

    code = "provider_unavailable"


class ProviderDataError(ProviderError):
    """The provider answered with data calsync cannot read (e.g. a malformed ICS feed)."""

    code = "provider_data_error"


class AuthError(CalsyncError):
    """No API key, or one that is unknown or revoked (HTTP 401)."""

    code = "unauthorized"


class ForbiddenError(CalsyncError):
    """A valid API key whose scope does not allow the request (HTTP 403)."""

    code = "forbidden"


class ConflictError(CalsyncError):
    """The request clashes with the current state (HTTP 409)."""

    code = "conflict"


class SlotUnavailableError(ConflictError):
    """The requested time is taken or breaks a rule; ``alternatives`` are free slots near it."""

    code = "slot_unavailable"

    def __init__(
        self, message: str, alternatives: tuple[object, ...] = (), resource: str | None = None
    ) -> None:
        super().__init__(message)
        self.alternatives = alternatives
        self.resource = resource


class IdempotencyMismatchError(InputError):
    """An Idempotency-Key was reused with a different request body (HTTP 422)."""

    code = "idempotency_key_reused"
