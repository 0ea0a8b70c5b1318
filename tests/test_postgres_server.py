"""The PostgreSQL test server itself (tests/support/postgres.py): fresh databases per
test, and no server outlives the process that started it, even one killed with SIGKILL."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from tests.conftest import ROOT
from tests.support.chat import wait_until
from tests.support.postgres import PostgresServer, require_postgres


def test_each_new_database_is_empty_and_separate(pg_server):
    first, second = pg_server.create_database(), pg_server.create_database()
    try:
        pg_server.sql("CREATE TABLE note (body text); INSERT INTO note VALUES ('kept here')", first)
        assert pg_server.sql("SELECT body FROM note", first).strip() == "kept here"
        assert pg_server.sql("SELECT count(*) FROM pg_tables WHERE tablename = 'note'", second).strip() == "0"
    finally:
        pg_server.drop_database(first)
        pg_server.drop_database(second)
    assert first not in pg_server.sql("SELECT datname FROM pg_database")


def test_the_server_listens_on_loopback_only(pg_server):
    assert pg_server.sql("SHOW listen_addresses").strip() == "127.0.0.1"
    assert pg_server.url("x").startswith("postgresql://postgres@127.0.0.1:")


STARTER = """
import json, sys
sys.path.insert(0, sys.argv[1])
from tests.support.postgres import PostgresServer, _postmaster_pid
server = PostgresServer().start()
print(json.dumps({"root": str(server.root), "pid": _postmaster_pid(server.data)}), flush=True)
sys.stdin.read()
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is gone for our purpose
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_a_server_stops_when_the_process_that_started_it_is_killed():
    require_postgres()
    starter = subprocess.Popen([sys.executable, "-c", STARTER, str(ROOT)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        started = json.loads(starter.stdout.readline())
        assert _alive(started["pid"])
        os.kill(starter.pid, signal.SIGKILL)
        starter.wait()
        wait_until(lambda: not _alive(started["pid"]), timeout=60, what="the orphaned server to stop")
        wait_until(lambda: not os.path.exists(started["root"]), timeout=30, what="its directory to be removed")
    finally:
        if starter.poll() is None:
            starter.kill()
            starter.wait()


def test_stop_removes_the_server_and_its_files():
    require_postgres()
    server = PostgresServer().start()
    root = server.root
    assert server.sql("SELECT 1").strip() == "1"
    server.stop()
    assert not root.exists()
