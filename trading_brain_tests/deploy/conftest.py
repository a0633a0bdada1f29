"""The deployment tests' real PostgreSQL server (``postgres.start_server``), one per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from trading_brain_tests.deploy.postgres import PgServer, start_server


@pytest.fixture(scope="module")
def pg() -> Iterator[PgServer]:
    server = start_server()
    try:
        yield server
    finally:
        server.stop()
