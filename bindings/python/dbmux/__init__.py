"""dbmux: a PEP 249 (DB-API 2.0) driver for SQLite and PostgreSQL, pooled by
the dbmux Rust connection manager, compiled in (PyO3).

    import dbmux
    with dbmux.connect("sqlite:///app.db") as conn:      # or connect() for DATABASE_URL
        cur = conn.cursor()
        cur.execute("SELECT ? + 1", (41,))
        print(cur.fetchone())                             # (42,)

threadsafety = 2: threads may share the module and connections (each
connection serialises its calls with a lock); a cursor is used by one
thread at a time.

The package is thin: every behaviour (pooling, transactions and the rule for
a COMMIT whose outcome is unknown, health caching, error codes) lives in the
Rust core, reached through the compiled extension `_dbmux` (PyO3), which also
runs the connection, the cursor and its fetches. Modules: `_dbmux` (compiled),
`_errors`, `_types`, `_manager`, `_connection`, `_cursor`, `_logging`,
`_version`.
"""

from . import _logging  # noqa: F401 - installs the log bridge
from ._connection import Connection  # noqa: F401
from ._cursor import Cursor  # noqa: F401
from ._errors import (  # noqa: F401 - re-exported (PEP 249)
    AuthFailed, DatabaseError, DatabaseNotFound, DataError, Error, IntegrityError, InterfaceError,
    InternalError, MigrationError, NotSupportedError, OperationalError, ProgrammingError,
    TlsFailed, Warning,
)
from ._manager import (  # noqa: F401
    Manager,
    connect,
    debug_info,
    health,
    metrics,
    shutdown,
    sqlite_version,
)
from ._types import (  # noqa: F401 - re-exported (PEP 249)
    BINARY, DATETIME, NUMBER, ROWID, STRING, Binary, Date, DateFromTicks, DBAPITypeObject, Time,
    TimeFromTicks, Timestamp, TimestampFromTicks,
)
from ._version import __version__  # noqa: F401

#: The SQLite library's version as a tuple, as the stdlib `sqlite3` module
#: has it (`(3, 46, 1)`); `()` when the package was built without SQLite.
sqlite_version_info = tuple(int(x) for x in (sqlite_version() or "").split(".") if x.isdigit())

apilevel = "2.0"
threadsafety = 2
paramstyle = "qmark"
