"""SQLAlchemy's dialect compliance suite, as it ships."""

from sqlalchemy.testing.suite import *  # noqa: F401,F403
