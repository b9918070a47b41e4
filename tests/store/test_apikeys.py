"""API keys in the store, on SQLite and PostgreSQL: tokens, hashes, revocation, last use."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from calsync.clock import FrozenClock
from calsync.errors import InputError, NotFoundError
from calsync.model import ApiKey, Scope
from calsync.store import Store, apikeys
from calsync.store.schema import api_keys

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=ZoneInfo("Europe/Vienna"))
TOKEN = re.compile(r"csk_([a-z2-7]{8})_([A-Za-z0-9_-]{43})")


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    store = Store.open(db_url)
    store.upgrade()
    yield store
    store.close()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


def test_create_returns_the_key_and_a_token_of_the_documented_form(store: Store) -> None:
    key, token = store.api_keys.create("vapi-prod", Scope.WRITE, T0)
    match = TOKEN.fullmatch(token)
    assert match is not None
    assert key.prefix == match.group(1)
    assert key.name == "vapi-prod"
    assert key.scope is Scope.WRITE
    assert key.created_at == T0
    assert key.created_at.tzinfo is UTC
    assert key.last_used_at is None
    assert key.revoked_at is None


def test_only_a_hash_of_the_token_is_stored(store: Store) -> None:
    _, token = store.api_keys.create("agent", Scope.READ, T0)
    secret = token[len("csk_abcdefgh_") :]
    with store.read() as conn:
        (row,) = conn.execute(select(api_keys)).mappings().all()
    stored = " ".join(str(value) for value in row.values())
    assert token not in stored
    assert secret not in stored
    assert row["secret_hash"] == apikeys.hash_token(token)


def test_list_returns_all_keys_oldest_first_revoked_included(store: Store) -> None:
    later, _ = store.api_keys.create("later", Scope.ADMIN, T0 + timedelta(hours=1))
    first, _ = store.api_keys.create("first", Scope.READ, T0)
    store.api_keys.revoke(first.id, T0 + timedelta(hours=2))
    listed = store.api_keys.list()
    assert [k.name for k in listed] == ["first", "later"]
    assert listed[0].revoked_at == T0 + timedelta(hours=2)
    assert listed[1] == later


def test_list_of_an_empty_store_is_empty(store: Store) -> None:
    assert store.api_keys.list() == []


@pytest.mark.parametrize("name", ["", "   ", "x" * 129])
def test_names_must_have_1_to_128_characters(store: Store, name: str) -> None:
    with pytest.raises(InputError, match="1 to 128 characters"):
        store.api_keys.create(name, Scope.READ, T0)
    assert store.api_keys.list() == []


def test_a_name_of_128_characters_is_fine(store: Store) -> None:
    key, _ = store.api_keys.create("x" * 128, Scope.READ, T0)
    assert store.api_keys.list() == [key]


def test_an_unknown_scope_is_an_input_error(store: Store) -> None:
    with pytest.raises(InputError, match="read, write, admin"):
        store.api_keys.create("agent", "owner", T0)


def test_a_scope_given_as_text_is_accepted(store: Store) -> None:
    key, _ = store.api_keys.create("agent", "admin", T0)
    assert key.scope is Scope.ADMIN


def test_prefixes_and_tokens_are_unique(store: Store) -> None:
    created = [store.api_keys.create(f"k{i}", Scope.READ, T0) for i in range(20)]
    assert len({key.prefix for key, _ in created}) == 20
    assert len({token for _, token in created}) == 20
    assert len({key.id for key, _ in created}) == 20


def test_a_taken_prefix_is_drawn_again(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    first, _ = store.api_keys.create("first", Scope.READ, T0)
    draws = iter([first.prefix, first.prefix, "abcdefgh"])
    monkeypatch.setattr(apikeys, "_new_prefix", lambda: next(draws))
    second, token = store.api_keys.create("second", Scope.READ, T0)
    assert second.prefix == "abcdefgh"
    assert token.startswith("csk_abcdefgh_")


def test_verify_returns_the_key_of_a_good_token(store: Store, clock: FrozenClock) -> None:
    key, token = store.api_keys.create("agent", Scope.WRITE, T0)
    got = store.api_keys.verify(token, clock.now())
    assert got is not None
    assert (got.id, got.prefix, got.scope) == (key.id, key.prefix, Scope.WRITE)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: "",
        lambda t: "csk_",
        lambda t: t[:-1],  # wrong secret, right prefix
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
        lambda t: t + "x",
        lambda t: t.upper(),
        lambda t: t.replace("csk_", "sk_", 1),
        lambda t: t.replace("csk_", "CSK_", 1),
        lambda t: t[:12] + t[13:],  # prefix of 7 characters
        lambda t: t[:13],  # no secret
        lambda t: "Bearer " + t,
        lambda t: t + "\n",
        lambda t: t[:-1] + "é",
        lambda t: t[:-1] + "\udcff",
        lambda t: t + "a" * 500,
        lambda t: "csk_abcdefgh_" + t[13:],  # a prefix no key has
    ],
)
def test_verify_rejects_malformed_and_wrong_tokens(
    store: Store, clock: FrozenClock, mangle: Callable[[str], str]
) -> None:
    _, token = store.api_keys.create("agent", Scope.READ, T0)
    assert store.api_keys.verify(mangle(token), clock.now()) is None


def test_a_token_of_another_key_with_a_swapped_prefix_fails(store: Store) -> None:
    a, token_a = store.api_keys.create("a", Scope.READ, T0)
    b, _ = store.api_keys.create("b", Scope.ADMIN, T0)
    forged = token_a.replace(a.prefix, b.prefix, 1)
    assert store.api_keys.verify(forged, T0) is None


def test_revoked_keys_fail_to_verify(store: Store, clock: FrozenClock) -> None:
    key, token = store.api_keys.create("agent", Scope.READ, T0)
    _, other_token = store.api_keys.create("other", Scope.READ, T0)
    revoked = store.api_keys.revoke(key.id, T0 + timedelta(minutes=1))
    assert revoked.revoked_at == T0 + timedelta(minutes=1)
    assert store.api_keys.verify(token, clock.now()) is None
    assert store.api_keys.verify(other_token, clock.now()) is not None


@pytest.mark.parametrize("by", ["id", "prefix", "token"])
def test_revoke_by_id_prefix_or_full_token(store: Store, by: str) -> None:
    key, token = store.api_keys.create("agent", Scope.READ, T0)
    store.api_keys.create("bystander", Scope.READ, T0)
    ref = {"id": key.id, "prefix": key.prefix, "token": token}[by]
    revoked = store.api_keys.revoke(f" {ref} ", T0 + timedelta(hours=1))
    assert (revoked.id, revoked.revoked_at) == (key.id, T0 + timedelta(hours=1))
    assert [k.name for k in store.api_keys.list() if k.revoked_at] == ["agent"]


def test_revoking_twice_keeps_the_first_time(store: Store) -> None:
    key, _ = store.api_keys.create("agent", Scope.READ, T0)
    store.api_keys.revoke(key.prefix, T0 + timedelta(hours=1))
    again = store.api_keys.revoke(key.id, T0 + timedelta(hours=5))
    assert again.revoked_at == T0 + timedelta(hours=1)


@pytest.mark.parametrize("ref", ["nope", "", "abcdefgh", "00000000-0000-0000-0000-000000000000"])
def test_revoking_an_unknown_key_is_not_found(store: Store, ref: str) -> None:
    store.api_keys.create("agent", Scope.READ, T0)
    with pytest.raises(NotFoundError, match=r"calsync apikey list"):
        store.api_keys.revoke(ref, T0)


def test_revoking_by_a_wrong_token_is_not_found_and_does_not_echo_the_secret(
    store: Store,
) -> None:
    key, token = store.api_keys.create("agent", Scope.READ, T0)
    wrong = token[:-4] + "AAAA"
    with pytest.raises(NotFoundError) as caught:
        store.api_keys.revoke(wrong, T0)
    assert wrong[13:] not in str(caught.value)
    assert f"csk_{key.prefix}_" in str(caught.value)
    assert store.api_keys.list()[0].revoked_at is None


def _last_used(store: Store, key: ApiKey) -> datetime | None:
    (listed,) = [k for k in store.api_keys.list() if k.id == key.id]
    return listed.last_used_at


def test_last_used_is_written_at_most_once_a_minute(store: Store, clock: FrozenClock) -> None:
    key, token = store.api_keys.create("agent", Scope.READ, T0)
    first = store.api_keys.verify(token, clock.now())
    assert first is not None
    assert first.last_used_at == T0
    assert first.last_used_at.tzinfo is UTC
    assert _last_used(store, key) == T0

    clock.advance(timedelta(seconds=59))
    seen = store.api_keys.verify(token, clock.now())
    assert seen is not None
    assert seen.last_used_at == T0  # not written again within the minute
    assert _last_used(store, key) == T0

    clock.advance(timedelta(seconds=1))
    again = store.api_keys.verify(token, clock.now())
    assert again is not None
    assert again.last_used_at == T0 + timedelta(minutes=1)
    assert _last_used(store, key) == T0 + timedelta(minutes=1)


def test_verify_within_the_minute_does_not_write(
    store: Store, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, token = store.api_keys.create("agent", Scope.READ, T0)
    assert store.api_keys.verify(token, clock.now()) is not None
    writes: list[object] = []
    monkeypatch.setattr(store, "write", lambda: writes.append(1))
    for _ in range(10):
        clock.advance(timedelta(seconds=5))
        assert store.api_keys.verify(token, clock.now()) is not None
    assert writes == []


def test_failed_verifications_do_not_touch_last_used(store: Store, clock: FrozenClock) -> None:
    key, token = store.api_keys.create("agent", Scope.READ, T0)
    assert store.api_keys.verify(token[:-1], clock.now()) is None
    assert _last_used(store, key) is None
    store.api_keys.revoke(key.id, T0)
    assert store.api_keys.verify(token, clock.now()) is None
    assert _last_used(store, key) is None
