"""The fixtures the test modules share: a database URL on each backend and a
fresh table name."""

import uuid

import pytest

import dbmux
from helpers import pg_url


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/py.db"
    return pg_url()


@pytest.fixture
def table(url):
    """A fresh table name (PostgreSQL is shared between tests)."""
    name = "t_" + uuid.uuid4().hex[:10]
    yield name
    with dbmux.connect(url) as c:
        c.cursor().execute(f"DROP TABLE IF EXISTS {name}")
