"""A FastAPI service on SQLAlchemy's async engine over dbmux, written the
way such services are: an ORM model, a session per request (`get_db`),
startup connectivity check, graceful shutdown, and the operational
endpoints (health, info, status, reconnect, Prometheus metrics).

    pip install "./bindings/python[sqlalchemy]" fastapi uvicorn
    uvicorn fastapi_app:app --app-dir examples/python
    DATABASE_URL=postgresql://app@db/app uvicorn fastapi_app:app --app-dir examples/python

DATABASE_URL may be a plain libpq/dbmux URL (`postgresql://...`,
`sqlite:///app.db`) or a SQLAlchemy one (`postgresql+dbmux://...`); the
default is `sqlite+dbmux:///app.db`. `/health/database` reports dbmux's
health, which is reused for DB_HEALTH_CHECK_INTERVAL (30 s by default; set it
to your probe's period, or `0` for a fresh check on every call).
"""

import asyncio
import contextlib
import logging
import os

from fastapi import Depends, FastAPI, HTTPException
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy import String, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import dbmux
from dbmux.sqlalchemy import manager_of

log = logging.getLogger("fastapi_app")


def database_url():
    """DATABASE_URL as a SQLAlchemy URL on the dbmux dialects."""
    url = os.environ.get("DATABASE_URL") or "sqlite+dbmux:///app.db"
    for scheme in ("postgresql", "postgres", "sqlite"):
        if url.startswith(scheme + "://") or url.startswith(scheme + ":"):
            backend = "postgresql" if scheme.startswith("postgres") else "sqlite"
            rest = url.split(":", 1)[1]
            return f"{backend}+dbmux:{rest}"
    return url


engine = create_async_engine(database_url(), pool_size=5, max_overflow=10, pool_pre_ping=True,
                             pool_timeout=10)
Session = async_sessionmaker(engine, expire_on_commit=False)


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))


class ItemIn(BaseModel):
    name: str


async def get_db():
    """A session per request, closed whatever happens."""
    session = Session()
    try:
        yield session
    finally:
        await session.close()


@contextlib.asynccontextmanager
async def lifespan(app):
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
        version = (await conn.execute(text(
            "SELECT sqlite_version()" if engine.dialect.name == "sqlite" else "SELECT version()"
        ))).scalar()
    info = await asyncio.to_thread(manager_of(engine).debug_info)
    log.info("database ready: %s (%s %s)", info["url"], info["backend"], version)
    yield
    await engine.dispose()
    log.info("database connections closed")


app = FastAPI(lifespan=lifespan)


@app.get("/health/database")
async def health_database():
    """dbmux's health report: 200 when healthy, 503 (with the cause) otherwise."""
    report = await asyncio.to_thread(manager_of(engine).health)
    return JSONResponse(report, status_code=200 if report["status"] == "healthy" else 503)


@app.get("/api/database/info")
async def database_info():
    info = await asyncio.to_thread(manager_of(engine).debug_info)
    return {
        "backend": info["backend"],
        "url": info["url"],  # redacted: never the password
        "driver": engine.dialect.driver,
        "pool_size": info["pool_size"],
        "max_overflow": info["pool_max_overflow"],
        "dbmux": dbmux.__version__,
    }


@app.get("/api/database/status")
async def database_status():
    """Pool state and counters (dbmux's debug info)."""
    return await asyncio.to_thread(manager_of(engine).debug_info)


@app.get("/metrics")
def metrics(request: Request):
    """The pool's metrics for a Prometheus scrape (OpenMetrics when asked for)."""
    om = "application/openmetrics-text" in request.headers.get("accept", "")
    return Response(manager_of(engine).metrics(openmetrics=om), media_type=(
        "application/openmetrics-text; version=1.0.0; charset=utf-8" if om
        else "text/plain; version=0.0.4; charset=utf-8"))


@app.post("/api/database/reconnect")
async def reconnect():
    """Closes every pooled connection; the next request opens new ones."""
    await engine.dispose()
    report = await asyncio.to_thread(manager_of(engine).health)
    return JSONResponse({"reconnected": True, "health": report},
                        status_code=200 if report["status"] == "healthy" else 503)


@app.post("/api/items", status_code=201)
async def create_item(item: ItemIn, db: AsyncSession = Depends(get_db)):
    row = Item(name=item.name)
    db.add(row)
    await db.commit()
    return {"id": row.id, "name": row.name}


@app.get("/api/items/{item_id}")
async def read_item(item_id: int, db: AsyncSession = Depends(get_db)):
    row = (await db.execute(select(Item).where(Item.id == item_id))).scalar_one_or_none()
    if row is None:
        raise HTTPException(404, "no such item")
    return {"id": row.id, "name": row.name}
