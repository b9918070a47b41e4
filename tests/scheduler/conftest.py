from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from calsync.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A migrated SQLite store in a fresh directory."""
    store = Store.open(f"sqlite:///{tmp_path}/calsync.db")
    store.upgrade()
    yield store
    store.close()
