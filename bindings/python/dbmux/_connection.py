"""A pooled connection (PEP 249): the compiled `dbmux._dbmux.Connection`,
with the PEP 249 exception classes as attributes."""

from . import _dbmux
from ._errors import (
    DatabaseError, DataError, Error, IntegrityError, InterfaceError, InternalError,
    NotSupportedError, OperationalError, ProgrammingError, Warning,
)


Connection = _dbmux.Connection
# PEP 249's optional extension: the exception classes as attributes of the
# connection class, set on the compiled class itself (a Python subclass
# would cost every checkout a second object layout and a constructor call).
for _cls in (Warning, Error, InterfaceError, DatabaseError, DataError, OperationalError,
             IntegrityError, InternalError, ProgrammingError, NotSupportedError):
    setattr(Connection, _cls.__name__, _cls)
del _cls

__all__ = ["Connection"]
