"""Builds the Rust C library (../../ffi, a plain cdylib) into the package.

By default libdbmux links the system libsqlite3 as a shared library, so
dbmux and the stdlib `sqlite3` module share one SQLite in the process (two
copies do not see each other's file locks and can corrupt a database that
both open). DBMUX_BUNDLED_SQLITE=1 at build time compiles SQLite into
libdbmux instead: only for processes that load no other SQLite.
"""

import os

from setuptools import setup
from setuptools_rust import Binding, RustExtension

BUNDLED = os.environ.get("DBMUX_BUNDLED_SQLITE", "") not in ("", "0")

setup(
    rust_extensions=[
        RustExtension(
            "dbmux._libdbmux",
            path="../../ffi/Cargo.toml",
            binding=Binding.NoBinding,
            features=["bundled"] if BUNDLED else [],
        )
    ],
)
