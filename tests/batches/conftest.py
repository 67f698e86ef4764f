"""The real HTTP app over a real database, storage and in-process workers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from removeany.app import create_app
from removeany.context import Context


@pytest.fixture
def client(ctx: Context) -> Iterator[TestClient]:
    with TestClient(create_app(ctx)) as test_client:
        yield test_client
