"""Helpers shared by the test modules: the throwaway PostgreSQL server's URL
and the descriptors this process holds on a file."""

import importlib
import os

import pytest


def pg_url():
    """The TLS test server (a visible skip locally, a failure in CI)."""
    url = os.environ.get("DBMUX_TEST_PG_URL")
    if url:
        return url + "?sslmode=require"
    msg = "PostgreSQL test server not running: run through scripts/with-test-postgres.sh"
    if os.environ.get("CI") == "true":
        pytest.fail(msg)
    pytest.skip(msg)


def need(module, install):
    """`module` imported, or a visible skip locally and a failure in CI
    (`install` says what to pip install)."""
    msg = f"{module} is not installed: pip install {install} (dbmux[test] has it)"
    if os.environ.get("CI") == "true":
        try:
            return importlib.import_module(module)
        except ImportError:
            pytest.fail(msg, pytrace=False)
    return pytest.importorskip(module, reason=msg)


def open_fds_to(path):
    """The descriptors of this process that point at `path` or its -wal/-shm."""
    names = {os.path.realpath(str(path) + s) for s in ("", "-wal", "-shm")}
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target in names:
            out.append(target)
    return out
