"""API keys (placeholder; being written)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from calsync.store.core import Store


class ApiKeyRepo:
    def __init__(self, store: Store) -> None:
        self._store = store
