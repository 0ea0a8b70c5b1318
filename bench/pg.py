"""PostgreSQL for the benchmarks: new databases on a server you name, or on a throwaway
server started like the tests' (tests/support/postgres.py) but with PostgreSQL's default
durability (fsync, synchronous_commit and full_page_writes on), as a real server runs.

    with BenchPostgres(args.postgres) as pg:    # "auto": a throwaway server; or a URL
        url = pg.new_database()                  # postgresql://.../omnidesk_bench_<pid>_<n>

A URL names a server and a user allowed to CREATE DATABASE; the databases made are
dropped at the end.
"""
from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support import postgres  # noqa: E402

DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on", "wal_level": "replica",
           "max_wal_senders": "10"}


class BenchPostgres:
    def __init__(self, where: str = "auto"):
        self.where = where
        self.server: postgres.PostgresServer | None = None
        self.made: list[str] = []
        self._names = itertools.count(1)

    def __enter__(self) -> "BenchPostgres":
        if self.where == "auto":
            if not postgres.installed():
                raise SystemExit("PostgreSQL is not installed (apt-get install postgresql), or pass --postgres URL")
            self.server = postgres.PostgresServer(settings=DURABLE).start()
        return self

    def __exit__(self, *exc) -> None:
        for name in self.made:
            try:
                self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except Exception as e:  # keep going: the rest still gets dropped
                print(f"could not drop {name}: {e}", file=sys.stderr)
        if self.server is not None:
            self.server.stop()

    def describe(self) -> str:
        if self.server is not None:
            return f"throwaway PostgreSQL on 127.0.0.1:{self.server.port} (default durability)"
        parts = urlsplit(self.where)
        return f"PostgreSQL at {parts.hostname}:{parts.port or 5432}"

    def url(self, database: str) -> str:
        if self.server is not None:
            return self.server.url(database)
        parts = urlsplit(self.where)
        return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, ""))

    def new_database(self) -> str:
        """The URL of a new, empty database (dropped at the end)."""
        name = f"omnidesk_bench_{os.getpid()}_{next(self._names)}"
        self._admin(f'CREATE DATABASE "{name}"')
        self.made.append(name)
        return self.url(name)

    def size_bytes(self, url: str) -> int:
        import psycopg

        with psycopg.connect(url) as conn:
            return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]

    def _admin(self, sql: str) -> None:
        if self.server is not None:
            self.server.sql(sql)
            return
        import psycopg

        with psycopg.connect(self.where, autocommit=True) as conn:
            conn.execute(sql)


class RoundTrips:
    """Counts the round trips to the server while inside `with`: every statement a psycopg
    cursor sends on its own is one, and so is a pipeline (statements sent together and
    answered together, psycopg's Connection.pipeline). psycopg keeps no such counter, so
    both are wrapped for the time being (this process only; the cost is ~1 us a statement).

        with RoundTrips() as trips:
            ...
        trips.count
    """

    def __init__(self):
        self.count = 0
        self._depth = 0
        self._saved: tuple = ()

    def __enter__(self) -> "RoundTrips":
        import contextlib

        import psycopg

        execute, pipeline = psycopg.Cursor.execute, psycopg.Connection.pipeline
        counter = self

        def counted_execute(cursor, *args, **kwargs):
            if counter._depth == 0:
                counter.count += 1
            return execute(cursor, *args, **kwargs)

        @contextlib.contextmanager
        def counted_pipeline(conn):
            counter._depth += 1
            try:
                with pipeline(conn) as p:
                    yield p
            finally:
                counter._depth -= 1
                if counter._depth == 0:
                    counter.count += 1

        self._saved = (execute, pipeline)
        psycopg.Cursor.execute, psycopg.Connection.pipeline = counted_execute, counted_pipeline
        return self

    def __exit__(self, *exc) -> None:
        import psycopg

        psycopg.Cursor.execute, psycopg.Connection.pipeline = self._saved
