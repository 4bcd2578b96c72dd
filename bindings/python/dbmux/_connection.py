"""A pooled connection (PEP 249): the compiled `dbmux._dbmux.Connection`,
with the PEP 249 exception classes as attributes."""

from . import _dbmux
from ._errors import (
    DatabaseError, DataError, Error, IntegrityError, InterfaceError, InternalError,
    NotSupportedError, OperationalError, ProgrammingError, Warning,
)


class Connection(_dbmux.Connection):
    """A pooled connection (PEP 249). A transaction starts implicitly before
    the first statement that changes something (not before SELECTs);
    `commit()` / `rollback()` end it; `close()` rolls back and returns the
    connection to the pool. `with` commits on success and rolls back on an
    exception, then closes. `execute`, the cursor and its fetches run in
    Rust, with the GIL released while the database works."""

    Warning = Warning
    Error = Error
    InterfaceError = InterfaceError
    DatabaseError = DatabaseError
    DataError = DataError
    OperationalError = OperationalError
    IntegrityError = IntegrityError
    InternalError = InternalError
    ProgrammingError = ProgrammingError
    NotSupportedError = NotSupportedError
