"""SQLAlchemy dialects on dbmux, registered as entry points:

    from sqlalchemy import create_engine
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_engine("sqlite+dbmux:///app.db", pool_size=5, pool_pre_ping=True)
    engine = create_engine("postgresql+dbmux://app@db.internal/app?sslmode=require")
    aengine = create_async_engine("sqlite+dbmux:///app.db")      # the same URLs, awaited

dbmux owns the pooling: the dialects' pool (`DbmuxPool`) hands `pool_size`,
`max_overflow`, `pool_timeout`, `pool_recycle` and `pool_pre_ping` to the
dbmux manager of the engine, and `engine.dispose()` closes every one of its
connections before it returns. `connect_args={"readonly": True}` makes an
engine of connections for reads (replicas on PostgreSQL).
"""

from ._pool import DbmuxPool  # noqa: F401


def manager_of(engine):
    """The dbmux manager under a `sqlite+dbmux` / `postgresql+dbmux` engine
    (sync or async): its `health()`, `debug_info()`, `backup()`, ...
    Built at the engine's first checkout, or here."""
    sync = getattr(engine, "sync_engine", engine)
    dialect = sync.dialect
    if not hasattr(dialect, "_dbmux_manager"):
        raise TypeError(f"{sync.url.drivername} is not a dbmux dialect")
    _, cparams = dialect.create_connect_args(sync.url)
    pool = sync.pool
    if isinstance(pool, DbmuxPool):
        return pool.manager(cparams["url"])
    return dialect._dbmux_manager(cparams["url"])
