"""The fact spool's format, the SQLSTATE sorting, and what the writer does with each error.

The writer's behaviour per error is checked against a stand-in pool (transactions with
savepoints, the marks table, one planned failure); tests/component/test_fact_spool.py does the
same against the real PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import asyncpg
import pytest

from sambung.engine import db
from sambung.engine.facts import (
    CallAnsweredFact,
    FactWriter,
    _frame,
    _unframe,
    fact_from_json,
    fact_to_json,
    read_spool,
)
from sambung.engine.metrics import Metrics, build_metrics

T = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def pg_error(state: str) -> asyncpg.PostgresError:
    err = asyncpg.PostgresError.new({"C": state, "M": f"planned {state}"})
    assert isinstance(err, asyncpg.PostgresError)
    return err


# SQLSTATE -> how the writer must treat a statement that failed with it.
SQLSTATES = [
    ("08000", db.ErrorKind.TRANSIENT),  # connection exception
    ("08006", db.ErrorKind.TRANSIENT),  # connection failure
    ("08003", db.ErrorKind.TRANSIENT),  # connection does not exist
    ("40001", db.ErrorKind.TRANSIENT),  # serialization failure
    ("40P01", db.ErrorKind.TRANSIENT),  # deadlock detected
    ("53300", db.ErrorKind.TRANSIENT),  # too many connections
    ("53100", db.ErrorKind.TRANSIENT),  # disk full
    ("57P01", db.ErrorKind.TRANSIENT),  # admin shutdown (pg_terminate_backend, a restart)
    ("57P02", db.ErrorKind.TRANSIENT),  # crash shutdown
    ("57P03", db.ErrorKind.TRANSIENT),  # cannot connect now (starting up)
    ("57014", db.ErrorKind.TRANSIENT),  # query canceled (statement timeout)
    ("58030", db.ErrorKind.TRANSIENT),  # I/O error
    ("25006", db.ErrorKind.TRANSIENT),  # read-only transaction: a standby after a failover
    ("55P03", db.ErrorKind.TRANSIENT),  # lock not available
    ("22000", db.ErrorKind.INVALID_ROW),  # data exception (also asyncpg's encoding errors)
    ("22P02", db.ErrorKind.INVALID_ROW),  # invalid text representation
    ("22001", db.ErrorKind.INVALID_ROW),  # string data right truncation
    ("22008", db.ErrorKind.INVALID_ROW),  # datetime field overflow
    ("23502", db.ErrorKind.INVALID_ROW),  # not null violation
    ("23503", db.ErrorKind.INVALID_ROW),  # foreign key violation
    ("23505", db.ErrorKind.INVALID_ROW),  # unique violation
    ("23514", db.ErrorKind.INVALID_ROW),  # check violation
    ("25001", db.ErrorKind.OTHER),  # active SQL transaction: not the row's fault
    ("42P01", db.ErrorKind.OTHER),  # undefined table: a schema behind the code
    ("42703", db.ErrorKind.OTHER),  # undefined column
    ("42501", db.ErrorKind.OTHER),  # insufficient privilege
    ("0A000", db.ErrorKind.OTHER),  # feature not supported (asyncpg's stale cached statement)
    ("XX000", db.ErrorKind.OTHER),  # internal error
]


@pytest.mark.parametrize(("state", "kind"), SQLSTATES)
def test_sqlstates_are_sorted_by_what_sending_again_would_do(
    state: str, kind: db.ErrorKind
) -> None:
    assert db.classify_error(pg_error(state)) is kind


@pytest.mark.parametrize(
    "err",
    [
        ConnectionRefusedError(111, "refused"),
        ConnectionResetError(104, "reset"),
        TimeoutError(),
        OSError(113, "no route to host"),
        asyncpg.InterfaceError("connection is closed"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
    ],
)
def test_errors_without_a_sqlstate_from_the_connection_are_transient(err: Exception) -> None:
    assert db.classify_error(err) is db.ErrorKind.TRANSIENT


def test_a_bug_that_is_not_a_database_error_is_not_transient() -> None:
    assert db.classify_error(KeyError("x")) is db.ErrorKind.OTHER


# ---- the spool's lines ---------------------------------------------------------------------


def fact(i: int) -> CallAnsweredFact:
    return CallAnsweredFact(f"c{i}", T)


def spool_bytes(*facts: tuple[str, int, CallAnsweredFact]) -> bytes:
    out = b""
    gen = None
    for g, seq, f in facts:
        if g != gen:
            out += _frame(f"G {g}")
            gen = g
        out += _frame(f"F {seq} {fact_to_json(f)}")
    return out


def test_a_line_carries_its_checksum() -> None:
    line = _frame("F 1 {}")
    assert line.endswith(b"\n")
    assert _unframe(line[:-1]) == "F 1 {}"
    assert _unframe(line[:-1].replace(b"F 1", b"F 2")) is None
    assert _unframe(b"zzzzzzzz F 1 {}") is None
    assert _unframe(b"") is None


def test_the_spool_reads_generations_and_facts_in_order() -> None:
    data = spool_bytes(("g1", 1, fact(1)), ("g1", 2, fact(2)), ("g2", 1, fact(3)))
    data += _frame("G g3")  # a generation with no facts left
    got = read_spool(data)
    assert [(g, s) for g, s, _ in got.records] == [("g1", 1), ("g1", 2), ("g2", 1)]
    assert got.generations == ["g1", "g2", "g3"]
    assert not got.torn_tail
    assert (got.damaged, got.legacy) == (0, 0)


def test_a_torn_last_line_is_skipped_and_told() -> None:
    good = spool_bytes(("g1", 1, fact(1)), ("g1", 2, fact(2)))
    torn = _frame(f"F 3 {fact_to_json(fact(3))}")[:-9]  # cut in the middle of the append
    got = read_spool(good + torn)
    assert [s for _, s, _ in got.records] == [1, 2]
    assert got.torn_tail
    assert got.damaged == 0


def test_a_last_line_complete_but_for_its_newline_still_counts() -> None:
    data = spool_bytes(("g1", 1, fact(1)), ("g1", 2, fact(2)))[:-1]
    got = read_spool(data)
    assert [s for _, s, _ in got.records] == [1, 2]
    assert not got.torn_tail


def test_a_damaged_line_in_the_middle_is_skipped_and_counted() -> None:
    lines = spool_bytes(("g1", 1, fact(1)), ("g1", 2, fact(2)), ("g1", 3, fact(3))).split(b"\n")
    lines[2] = lines[2].replace(b"c2", b"c9")  # a flipped byte: the checksum no longer matches
    got = read_spool(b"\n".join(lines))
    assert [s for _, s, _ in got.records] == [1, 3]
    assert got.damaged == 1


def test_a_repeated_line_counts_once() -> None:
    data = spool_bytes(("g1", 1, fact(1)))
    data += _frame(f"F 1 {fact_to_json(fact(1))}")  # an append written again after a failed fsync
    assert len(read_spool(data).records) == 1


def test_plain_json_lines_of_an_earlier_spool_are_read() -> None:
    data = (fact_to_json(fact(1)) + "\n" + fact_to_json(fact(2)) + "\n").encode()
    got = read_spool(data)
    assert [s for _, s, _ in got.records] == [1, 2]
    assert got.legacy == 2
    assert len(got.generations) == 1


def test_a_set_aside_fact_appended_by_hand_is_read_back() -> None:
    data = spool_bytes(("g1", 1, fact(1)))
    rejected = fact_to_json(fact(2))[:-1] + ',"rejected":{"sqlstate":"23503"}}'
    got = read_spool(data + rejected.encode() + b"\n")
    assert [json.loads(text)["fields"]["call_id"] for _, _, text in got.records] == ["c1", "c2"]
    assert fact_from_json(got.records[1][2]) == fact(2)


# ---- what the writer does with each error --------------------------------------------------


class Db:
    """A stand-in for PostgreSQL: committed fact args, the marks, and planned failures."""

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []
        self.marks: dict[str, int] = {}
        # call_id -> (error, times to raise it; None: every time, as a row that is invalid)
        self.fail: dict[str, tuple[BaseException, int | None]] = {}

    def apply(self, ops: list[tuple[str, tuple[Any, ...]]]) -> None:
        for sql, args in ops:
            if "fact_spool_marks" in sql and sql.lstrip().startswith("INSERT"):
                self.marks[args[0]] = args[2]
            elif "fact_spool_marks" in sql:
                for g in args[0]:
                    self.marks.pop(g, None)
            else:
                self.rows.append(args)


class Tx:
    def __init__(self, conn: Conn, parent: Tx | None) -> None:
        self.conn, self.parent, self.ops = conn, parent, cast(list[tuple[str, tuple[Any, ...]]], [])

    async def __aenter__(self) -> Tx:
        self.conn.stack.append(self)
        return self

    async def __aexit__(self, et: object, e: object, tb: object) -> None:
        self.conn.stack.pop()
        if et is not None:
            return
        if self.parent is not None:
            self.parent.ops.extend(self.ops)
        else:
            self.conn.db.apply(self.ops)


class Conn:
    def __init__(self, database: Db) -> None:
        self.db = database
        self.stack: list[Tx] = []

    def transaction(self) -> Tx:
        return Tx(self, self.stack[-1] if self.stack else None)

    async def fetch(self, sql: str, gens: list[str]) -> list[dict[str, Any]]:
        return [
            {"generation": g, "committed_seq": self.db.marks[g]} for g in gens if g in self.db.marks
        ]

    async def execute(self, sql: str, *args: Any) -> str:
        if "fact_spool_marks" not in sql:
            err, times = self.db.fail.get(str(args[0]), (None, 0))
            if err is not None and times != 0:
                if times is not None:
                    self.db.fail[str(args[0])] = (err, times - 1)
                raise err
        self.stack[-1].ops.append((sql, args))
        return "OK"

    async def executemany(self, sql: str, many: list[tuple[Any, ...]]) -> None:
        for args in many:
            await self.execute(sql, *args)


class Pool:
    def __init__(self, database: Db) -> None:
        self.db = database

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[Conn]:
        yield Conn(self.db)


async def write_three_with_a_failure(
    tmp_path: Path, err: BaseException, times: int | None = 1
) -> tuple[Db, Metrics, FactWriter]:
    database = Db()
    database.fail["c2"] = (err, times)
    metrics = build_metrics()
    w = FactWriter(
        cast(asyncpg.Pool, Pool(database)), metrics, tmp_path / "f.spool", retry_max_seconds=0.01
    )
    for i in (1, 2, 3):
        w.record(fact(i))
    assert await w.durable(5)  # all three in one batch
    task = asyncio.create_task(w.run())
    try:
        assert await w.drain(5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        w.close()
    return database, metrics, w


@pytest.mark.parametrize(("state", "kind"), SQLSTATES)
async def test_only_an_invalid_row_is_set_aside_and_its_neighbours_land(
    tmp_path: Path, state: str, kind: db.ErrorKind
) -> None:
    # A row the database refuses for its values is refused every time; anything else once.
    times = None if kind is db.ErrorKind.INVALID_ROW else 1
    database, metrics, w = await write_three_with_a_failure(tmp_path, pg_error(state), times)
    landed = [args[0] for args in database.rows]
    rejected = metrics.registry.get_sample_value("sambung_facts_rejected_total")
    retries = metrics.registry.get_sample_value("sambung_db_write_retries_total")
    if kind is db.ErrorKind.INVALID_ROW:
        assert landed == ["c1", "c3"]
        assert rejected == 1
        assert retries == 0
        (line,) = w.rejected_file.read_text().splitlines()
        assert f'"sqlstate":"{state}"' in line
        assert '"call_id":"c2"' in line
    else:
        assert landed == ["c1", "c2", "c3"]  # once each, in order
        assert rejected == 0
        assert retries == 1
        assert not w.rejected_file.exists()
    assert len(database.marks) == 1  # this run's generation, committed to its last fact
    assert list(database.marks.values()) == [3]


@pytest.mark.parametrize(
    "err", [ConnectionResetError(104, "reset"), TimeoutError(), asyncpg.InterfaceError("closed")]
)
async def test_a_connection_that_fails_is_retried(tmp_path: Path, err: BaseException) -> None:
    database, metrics, w = await write_three_with_a_failure(tmp_path, err)
    assert [args[0] for args in database.rows] == ["c1", "c2", "c3"]
    assert metrics.registry.get_sample_value("sambung_facts_rejected_total") == 0
    assert not w.rejected_file.exists()
