"""API keys: creating, listing, revoking and verifying the bearer tokens of the HTTP API.

Owns the ``api_keys`` table. A token reads ``csk_<prefix>_<secret>``: the
prefix (8 lowercase base32 characters, unique) names the key in listings
and finds its row; the secret is ``secrets.token_urlsafe(32)``. Only a
hash of the whole token is stored, so the token is shown once, at
creation. This module must not cache verifications; that is the API's
job (``calsync.api.auth``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Row, insert, or_, select, update

from calsync.errors import InputError, NotFoundError
from calsync.model import ApiKey, Scope
from calsync.store.schema import api_keys

if TYPE_CHECKING:
    from calsync.store.core import Store

TOKEN_MARK = "csk"
PREFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"  # RFC 4648 base32, lowercase
PREFIX_LENGTH = 8
MAX_NAME = 128
MAX_TOKEN = 128  # real tokens are 56 characters; anything far longer is not one of ours
LAST_USED_EVERY = timedelta(minutes=1)
_PREFIX_ATTEMPTS = 5


class ApiKeyRepo:
    def __init__(self, store: Store) -> None:
        self._store = store

    def create(self, name: str, scope: Scope | str, now: datetime) -> tuple[ApiKey, str]:
        """A new key and its full token; the token is not stored and cannot be shown again."""
        name = _valid_name(name)
        scope = _valid_scope(scope)
        now = _utc(now)
        key_id = str(uuid.uuid4())
        secret = secrets.token_urlsafe(32)
        with self._store.write() as conn:
            prefix = _free_prefix(conn)
            token = f"{TOKEN_MARK}_{prefix}_{secret}"
            conn.execute(
                insert(api_keys).values(
                    id=key_id,
                    name=name,
                    prefix=prefix,
                    secret_hash=hash_token(token),
                    scope=scope.value,
                    created_at=now,
                )
            )
        return ApiKey(key_id, name, prefix, scope, created_at=now), token

    def list(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        query = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.name, api_keys.c.prefix)
        with self._store.read() as conn:
            return [_to_key(row) for row in conn.execute(query)]

    def revoke(self, key: str, now: datetime) -> ApiKey:
        """Revoke by id, prefix or full token; revoking again keeps the first ``revoked_at``."""
        with self._store.write() as conn:
            row = _find(conn, key.strip())
            if row is None:
                raise NotFoundError(
                    f"no API key {_shown(key.strip())!r} (see `calsync apikey list`)"
                )
            conn.execute(
                update(api_keys)
                .where(api_keys.c.id == row.id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            return _to_key(conn.execute(select(api_keys).where(api_keys.c.id == row.id)).one())

    def verify(self, token: str, now: datetime) -> ApiKey | None:
        """The key this token belongs to, or None (malformed, unknown, revoked or wrong secret).

        Notes ``last_used_at`` at most once per ``LAST_USED_EVERY`` per key, so
        the common case is a single indexed read and no write.
        """
        prefix = parse_token(token)
        if prefix is None:
            return None
        with self._store.read() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.prefix == prefix)).first()
        if row is None or not hmac.compare_digest(hash_token(token), row.secret_hash):
            return None
        if row.revoked_at is not None:
            return None
        key = _to_key(row)
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_EVERY:
            self._note_use(key.id, now)
            key = _to_key(row, last_used_at=_utc(now))
        return key

    def _note_use(self, key_id: str, now: datetime) -> None:
        # Conditional, so concurrent verifications of one key still write it once a minute.
        with self._store.write() as conn:
            conn.execute(
                update(api_keys)
                .where(
                    api_keys.c.id == key_id,
                    or_(
                        api_keys.c.last_used_at.is_(None),
                        api_keys.c.last_used_at <= now - LAST_USED_EVERY,
                    ),
                )
                .values(last_used_at=now)
            )


def hash_token(token: str) -> str:
    """The stored form of a token: SHA-256, hex.

    A fast hash is right here, unlike for passwords: the secret carries 256
    random bits, so no dictionary or brute-force search over SHA-256 can
    find it, and a slow KDF (bcrypt, argon2) would only add milliseconds to
    every API request without adding safety.
    """
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def parse_token(token: str) -> str | None:
    """The prefix of a well-formed ``csk_<prefix>_<secret>`` token, else None."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN or not token.isascii():
        return None
    parts = token.split("_", 2)  # the secret itself may contain "_"
    if len(parts) != 3:
        return None
    mark, prefix, secret = parts
    if mark != TOKEN_MARK or not _is_prefix(prefix) or not secret:
        return None
    if not all(c.isalnum() or c in "-_" for c in secret):
        return None
    return prefix


def _is_prefix(value: str) -> bool:
    return len(value) == PREFIX_LENGTH and all(c in PREFIX_ALPHABET for c in value)


def _new_prefix() -> str:
    return "".join(secrets.choice(PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))


def _free_prefix(conn: Connection) -> str:
    """A prefix no key has; 32**8 choices make a retry rare and a second one rarer still."""
    for _ in range(_PREFIX_ATTEMPTS):
        prefix = _new_prefix()
        taken = conn.execute(select(api_keys.c.id).where(api_keys.c.prefix == prefix)).first()
        if taken is None:
            return prefix
    raise RuntimeError(f"no free API key prefix after {_PREFIX_ATTEMPTS} attempts")


def _find(conn: Connection, key: str) -> Row[Any] | None:
    if key.startswith(f"{TOKEN_MARK}_"):
        prefix = parse_token(key)
        if prefix is None:
            return None
        row = conn.execute(select(api_keys).where(api_keys.c.prefix == prefix)).first()
        if row is None or not hmac.compare_digest(hash_token(key), row.secret_hash):
            return None
        return row
    return conn.execute(
        select(api_keys).where(or_(api_keys.c.id == key, api_keys.c.prefix == key))
    ).first()


def _shown(key: str) -> str:
    """What an error message may repeat of a key: never a token's secret."""
    if key.startswith(f"{TOKEN_MARK}_"):
        return f"{key[: len(TOKEN_MARK) + 1 + PREFIX_LENGTH]}_..."
    return key[:64]


def _valid_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise InputError(
            f"API key name must be 1 to {MAX_NAME} characters, got {len(name)}; "
            "pass --name NAME (e.g. --name vapi-prod)"
        )
    return name


def _valid_scope(scope: Scope | str) -> Scope:
    try:
        return Scope(scope)
    except ValueError:
        choices = ", ".join(s.value for s in Scope)
        raise InputError(f"API key scope {scope!r} is unknown; use one of {choices}") from None


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the store")
    return value.astimezone(UTC)


def _to_key(row: Row[Any], last_used_at: datetime | None = None) -> ApiKey:
    return ApiKey(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        scope=Scope(row.scope),
        created_at=row.created_at,
        last_used_at=last_used_at or row.last_used_at,
        revoked_at=row.revoked_at,
    )
