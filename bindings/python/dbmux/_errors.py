"""The PEP 249 exception hierarchy, and the mapping from dbmux status codes
(the Rust `ErrorCode` numbers) to it. The class is chosen by the code, never
by parsing the message."""


class Warning(Exception):  # noqa: A001 - the name is required by PEP 249
    """Important warnings (PEP 249)."""


# status number -> the Rust ErrorCode name ("invalid_url", ...), from the
# compiled core's table, so the names exist once.
NAMES = {}


class Error(Exception):
    """Base class of every dbmux error. `code` is the dbmux status number and
    `name` its stable name (`"pool_timeout"`, `"commit_unknown"`, ...: the
    Rust `ErrorCode` names, as in the JSON `error_code`)."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code
        self.name = NAMES.get(code)


class InterfaceError(Error):
    """The driver was misused or misconfigured (bad URL, closed connection, ...)."""


class DatabaseError(Error):
    """Errors related to the database."""


class DataError(DatabaseError):
    """A value is out of range or of the wrong type."""


class OperationalError(DatabaseError):
    """The database is unreachable, busy, read-only, or a timeout expired."""


class AuthFailed(OperationalError):
    """The server refused the credentials (wrong password, unknown role, no
    pg_hba.conf entry). Raised at once: retrying cannot fix it."""


class DatabaseNotFound(OperationalError):
    """The database does not exist (PostgreSQL 3D000, or a missing SQLite file
    under mode=ro / mode=rw). Raised at once."""


class TlsFailed(OperationalError):
    """TLS failed: certificate verification, the handshake, or a server that
    refuses TLS where sslmode requires it. Raised at once."""


class IntegrityError(DatabaseError):
    """A constraint (UNIQUE, NOT NULL, FOREIGN KEY, CHECK) was violated."""


class InternalError(DatabaseError):
    """A bug in dbmux."""


class ProgrammingError(DatabaseError):
    """Bad SQL, wrong number of parameters, a closed cursor, ..."""


class MigrationError(ProgrammingError):
    """The migrations and the database's ledger disagree (an applied
    migration whose file changed or is gone, a dirty ledger, an out-of-order
    version), or a migration file is malformed. The message names each
    version and what to do."""


class NotSupportedError(DatabaseError):
    """A feature the build or the backend does not support."""


# dbmux_status -> class (the numbers never change)
STATUS = {
    1: ProgrammingError,    # invalid URL (as psycopg)
    2: ProgrammingError,    # invalid configuration
    3: NotSupportedError,   # backend compiled out, or SQLite too old
    4: OperationalError,    # connect failed
    5: OperationalError,    # pool timeout
    6: InterfaceError,      # manager closed
    7: InterfaceError,      # already initialised
    8: ProgrammingError,    # SQL error
    9: IntegrityError,      # constraint
    10: OperationalError,   # read-only
    11: OperationalError,   # busy
    12: OperationalError,   # statement timeout
    13: DataError,          # type mismatch / out of range
    14: ProgrammingError,   # no rows
    15: ProgrammingError,   # invalid parameter
    16: OperationalError,   # I/O
    17: InterfaceError,     # misuse
    18: OperationalError,   # commit outcome unknown
    19: AuthFailed,         # authentication failed (OperationalError)
    20: DatabaseNotFound,   # database does not exist (OperationalError)
    21: TlsFailed,          # TLS failed (OperationalError)
    22: OperationalError,   # cancelled by the caller
    23: MigrationError,     # migrations and ledger disagree (ProgrammingError)
    99: InternalError,      # internal
}


# Codes of the errors that the Python layer raises itself.
INVALID_PARAMETER, TYPE_MISMATCH, MANAGER_CLOSED, MISUSE = 15, 13, 6, 17


def from_status(status, message):
    return STATUS.get(status, InternalError)(message, status)


def _load_names():
    from . import _dbmux
    NAMES.update(dict(_dbmux.status_names()))


_load_names()
