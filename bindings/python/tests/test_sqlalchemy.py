"""The SQLAlchemy dialects on both backends: the pool keywords reaching
dbmux, an ORM with a session per request (FastAPI's get_db pattern),
commit and rollback, disposal, jsonb's ? operator, autocommit and
isolation levels, the async engine from the same URL."""

import asyncio
import datetime
import decimal
import os
import threading
import uuid

import pytest

from helpers import need, open_fds_to  # noqa: E402

sa = need("sqlalchemy", "'sqlalchemy[asyncio]'")
from sqlalchemy import ForeignKey, String, event, select, text  # noqa: E402
from sqlalchemy.orm import (  # noqa: E402
    DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker,
)

import dbmux  # noqa: E402
from dbmux.sqlalchemy import DbmuxPool, manager_of  # noqa: E402


def sa_url(url):
    scheme, rest = url.split(":", 1)
    return f"{scheme}+dbmux:{rest}"


@pytest.fixture
def engine(url):
    e = sa.create_engine(sa_url(url), pool_size=3, max_overflow=2, pool_timeout=7,
                         pool_recycle=600, pool_pre_ping=True)
    yield e
    e.dispose()


def names():
    suffix = uuid.uuid4().hex[:8]
    return f"users_{suffix}", f"posts_{suffix}"


def models():
    users, posts = names()

    class Base(DeclarativeBase):
        pass

    class User(Base):
        __tablename__ = users
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(50), unique=True)
        joined: Mapped[datetime.date]
        balance: Mapped[decimal.Decimal] = mapped_column(sa.Numeric(12, 2))
        active: Mapped[bool]
        posts: Mapped[list["Post"]] = relationship(back_populates="author",
                                                   cascade="all, delete-orphan")

    class Post(Base):
        __tablename__ = posts
        id: Mapped[int] = mapped_column(primary_key=True)
        author_id: Mapped[int] = mapped_column(ForeignKey(f"{users}.id"))
        title: Mapped[str] = mapped_column(String(100))
        author: Mapped[User] = relationship(back_populates="posts")

    return Base, User, Post


def test_pool_keywords_configure_the_dbmux_manager(engine):
    assert isinstance(engine.pool, DbmuxPool)
    with engine.connect() as c:
        assert c.execute(text("SELECT 1")).scalar() == 1
        info = manager_of(engine).debug_info()
        assert (info["pool_size"], info["pool_max_overflow"]) == (3, 2)
        assert info["pool_checked_out"] == 1
    assert manager_of(engine).debug_info()["pool_checked_out"] == 0
    # SQLAlchemy's NullPool does not take them: they are a TypeError there
    with pytest.raises(TypeError, match="pool_size"):
        sa.create_engine("sqlite+dbmux://", poolclass=sa.pool.NullPool, pool_size=3)


def test_orm_session_per_request_commit_and_rollback(engine):
    Base, User, Post = models()
    Base.metadata.create_all(engine)
    SessionLocal = sessionmaker(engine)

    def get_db():  # FastAPI's dependency: a session yielded, closed in finally
        db = SessionLocal()
        try:
            yield db
        finally:
            db.close()

    def request(handler):
        gen = get_db()
        db = next(gen)
        try:
            return handler(db)
        finally:
            gen.close()

    def create(db):
        u = User(name="ada", joined=datetime.date(2020, 2, 29), balance=decimal.Decimal("10.50"),
                 active=True, posts=[Post(title="hello"), Post(title="again")])
        db.add(u)
        db.commit()
        return u.id

    uid = request(create)

    def duplicate(db):
        db.add(User(name="ada", joined=datetime.date(2021, 1, 1), balance=0, active=False))
        with pytest.raises(sa.exc.IntegrityError) as e:
            db.commit()
        assert isinstance(e.value.orig, dbmux.IntegrityError)
        db.rollback()
        return db.scalar(select(sa.func.count()).select_from(User))

    assert request(duplicate) == 1

    def read(db):
        u = db.get(User, uid)
        return (u.name, u.joined, u.balance, u.active, sorted(p.title for p in u.posts))

    assert request(read) == ("ada", datetime.date(2020, 2, 29), decimal.Decimal("10.50"), True,
                             ["again", "hello"])

    def rolled_back(db):
        db.get(User, uid).name = "grace"
        db.flush()
        db.rollback()
        return db.get(User, uid).name

    assert request(rolled_back) == "ada"
    with Session(engine) as db:  # executemany: one statement, many rows
        db.execute(sa.insert(Post), [{"author_id": uid, "title": f"p{i}"} for i in range(50)])
        n = db.execute(sa.update(Post).where(Post.title.like("p%")).values(title="x"))
        assert n.rowcount == 50
        db.commit()
    assert manager_of(engine).debug_info()["pool_checked_out"] == 0
    Base.metadata.drop_all(engine)


def test_connect_event_runs_once_per_physical_connection(engine):
    seen = []
    event.listen(engine, "connect", lambda dbapi_conn, rec: seen.append(id(rec)))
    for _ in range(5):
        with engine.connect() as c:
            c.execute(text("SELECT 1"))
    assert len(seen) == 1  # one connection, reused by dbmux


def test_dispose_closes_every_connection_so_the_file_can_go(tmp_path):
    path = tmp_path / "gone.db"
    e = sa.create_engine(f"sqlite+dbmux:///{path}")
    with e.begin() as c:
        c.execute(text("CREATE TABLE t (x)"))
        c.execute(text("INSERT INTO t VALUES (1)"))
    assert open_fds_to(path)
    e.dispose()
    assert open_fds_to(path) == []
    os.remove(path)
    with e.connect() as c:  # a new manager, a new file
        c.execute(text("CREATE TABLE t (y)"))
        c.commit()
    e.dispose()
    assert open_fds_to(path) == []


def test_autocommit_and_isolation_levels(engine, url):
    table = "iso_" + uuid.uuid4().hex[:8]
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        assert c.connection.dbapi_connection.autocommit is True
        c.execute(text(f"CREATE TABLE {table} (x INTEGER)"))
        c.execute(text(f"INSERT INTO {table} VALUES (1)"))
        c.rollback()  # nothing to roll back: it was committed
    with engine.connect() as c:
        assert c.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 1
        c.commit()
        if url.startswith("postgresql"):
            c2 = c.execution_options(isolation_level="REPEATABLE READ")
            assert c2.execute(text("SHOW transaction_isolation")).scalar() == "repeatable read"
            c.rollback()
        c.execute(text(f"DROP TABLE {table}"))
        c.commit()
    raw = engine.raw_connection()
    try:
        with pytest.raises(dbmux.Error, match="SOMETIMES"):
            raw.dbapi_connection.isolation_level = "SOMETIMES"
    finally:
        raw.close()


def test_postgresql_jsonb_question_mark_operators_and_type_oids(url):
    if not url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    from sqlalchemy.dialects.postgresql import JSONB
    e = sa.create_engine(sa_url(url))
    md = sa.MetaData()
    t = sa.Table("j_" + uuid.uuid4().hex[:8], md, sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("doc", JSONB), sa.Column("span", sa.Interval))
    md.create_all(e)
    try:
        with e.begin() as c:
            c.execute(t.insert(), [{"doc": {"a": 1}, "span": datetime.timedelta(days=1, seconds=5)},
                                   {"doc": {"b": 2}, "span": None}])
        with e.connect() as c:
            rows = c.execute(select(t.c.id, t.c.span).where(t.c.doc.has_key("a"))).all()
            assert rows == [(1, datetime.timedelta(days=1, seconds=5))]
            cur = c.connection.dbapi_connection.cursor()
            cur.execute(f"SELECT id, doc FROM {t.name} WHERE doc ? 'b'")
            assert [d[1] for d in cur.description] == [23, 3802]  # int4, jsonb OIDs
            assert cur.fetchall() == [(2, '{"b": 2}')]
    finally:
        md.drop_all(e)
        e.dispose()


def test_async_engine_from_the_same_url(url):
    need("greenlet", "'sqlalchemy[asyncio]'")
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
    Base, User, Post = models()

    async def main():
        e = create_async_engine(sa_url(url), pool_size=2, max_overflow=0)
        async with e.begin() as c:
            await c.run_sync(Base.metadata.create_all)

        async def one(i):
            async with AsyncSession(e) as db:
                db.add(User(name=f"u{i}", joined=datetime.date(2024, 1, i + 1),
                            balance=decimal.Decimal(i), active=i % 2 == 0))
                await db.commit()

        await asyncio.gather(*(one(i) for i in range(8)))
        async with AsyncSession(e) as db:
            got = (await db.execute(select(User.name).order_by(User.name))).scalars().all()
        async with e.begin() as c:
            await c.run_sync(Base.metadata.drop_all)
        await e.dispose()
        return got

    assert asyncio.run(main()) == [f"u{i}" for i in range(8)]


def test_one_connection_from_two_threads_is_serialised_not_corrupted(tmp_path):
    with dbmux.connect(f"sqlite:///{tmp_path}/two.db") as c:
        c.execute("CREATE TABLE t (x INTEGER)")
        c.commit()
        errors = []

        def work(k):
            try:
                for i in range(200):
                    c.execute("INSERT INTO t VALUES (?)", (k * 1000 + i,))
            except Exception as e:  # any error is a failure of the test
                errors.append(e)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        c.commit()
        assert errors == []
        assert c.execute("SELECT count(*), count(DISTINCT x) FROM t").fetchone() == (400, 400)


def test_create_function_lasts_as_long_as_the_connection(tmp_path, url):
    if url.startswith("postgresql"):
        with dbmux.connect(url) as c:
            with pytest.raises(dbmux.NotSupportedError, match="SQLite"):
                c.create_function("f", 1, str)
        return
    with dbmux.Manager(f"sqlite:///{tmp_path}/f.db", pool_size=1, max_overflow=0) as m:
        with m.connect() as c:
            c.create_function("twice", 1, lambda x: None if x is None else x * 2,
                              deterministic=True)

            def boom(x):
                raise ValueError(f"no {x}")
            c.create_function("boom", 1, boom)
            assert c.execute("SELECT twice(21), twice('ab'), twice(NULL)").fetchone() == (
                42, "abab", None)
            with pytest.raises(dbmux.Error, match="no 3"):
                c.execute("SELECT boom(3)")
            assert c.execute("SELECT twice(1)").fetchone() == (2,)
        with m.connect() as c:  # the same connection, checked out again
            assert c._first_checkout is False
            assert c.execute("SELECT twice(5)").fetchone() == (10,)
    # SQLAlchemy's SQLite dialect registers REGEXP in its connect event
    e = sa.create_engine(f"sqlite+dbmux:///{tmp_path}/re.db")
    with e.connect() as c:
        assert c.scalar(select(sa.literal("abc").regexp_match("^a.c$"))) == 1
        assert c.scalar(select(sa.literal("abc").regexp_match("^b"))) == 0
    e.dispose()
