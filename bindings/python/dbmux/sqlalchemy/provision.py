"""SQLAlchemy's test provisioning for the dbmux dialects: its own SQLite
and PostgreSQL routines (`sqlalchemy.testing.provision`, keyed by backend),
which `Dialect.load_provisioning()` finds through this module. Imported
only by SQLAlchemy's test plugin."""

from sqlalchemy.dialects.postgresql import provision as _postgresql  # noqa: F401
from sqlalchemy.dialects.sqlite import provision as _sqlite  # noqa: F401
