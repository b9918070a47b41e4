from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.daemon import Daemon
from tests.conftest import postgres_url


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def daemon(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Daemon]:
    """One running daemon per backend for a whole test module."""
    directory = tmp_path_factory.mktemp("daemon")
    if request.param == "sqlite":
        urls: Iterator[str] = iter([f"sqlite:///{directory}/calsync.db"])
    else:
        urls = postgres_url()
    url = next(urls)
    running = Daemon(directory, url)
    running.start()
    try:
        yield running
    finally:
        assert running.stop() == 0, running.log
        assert "csk_" not in running.log  # no API key ever reaches the log
        assert "http method=GET path=/healthz status=200" in running.log
        for _ in urls:  # drops the PostgreSQL schema
            pass
