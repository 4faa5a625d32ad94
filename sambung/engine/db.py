"""PostgreSQL: the connection pool and versioned migrations.

Migrations are the ``NNNN_name.sql`` files in ``engine/migrations``, applied in order, each in
its own transaction, under an advisory lock so two engines starting together cannot both apply
one. Applied versions are kept in ``schema_migrations`` with a checksum: editing a migration
that already ran is refused rather than silently ignored.
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg
import structlog
from asyncpg.pool import PoolConnectionProxy

from sambung.engine.errors import DatabaseUnavailable, SambungError

log = structlog.get_logger(__name__)

# Any constant works as long as every Sambung process uses the same one.
_MIGRATION_LOCK = 0x53414D42  # "SAMB"

# A plain connection or one borrowed from a pool: both run the same statements.
Conn = asyncpg.Connection | PoolConnectionProxy
# What a statement raises when PostgreSQL is away or refuses it: every caller that carries on
# without the database (calls go on, facts wait in the writer) catches exactly this.
DB_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class ErrorKind(enum.Enum):
    """What a failed statement says about sending it again."""

    # The database is away, busy or not writable right now (restart, failover, too many
    # connections, a deadlock): the same statement may well succeed later.
    TRANSIENT = "transient"
    # This row's values can never be stored (a bad value, a broken constraint): sending it
    # again changes nothing, so only this row is set aside.
    INVALID_ROW = "invalid_row"
    # Anything else (a statement the schema does not fit, a permission, an internal error):
    # not this row's fault, and it may be fixed without the row changing, so it is retried.
    OTHER = "other"


# SQLSTATE classes: 08 connection exception, 40 transaction rollback (deadlock, serialization
# failure), 53 insufficient resources (too many connections, disk full), 57 operator
# intervention (admin shutdown, cannot connect now), 58 system error (I/O).
_TRANSIENT_CLASSES = frozenset({"08", "40", "53", "57", "58"})
# 25006 read-only transaction: the server became a standby after a failover. 55P03 lock not
# available: a lock timeout.
_TRANSIENT_STATES = frozenset({"25006", "55P03"})
# 22 data exception, 23 integrity constraint violation, 44 WITH CHECK OPTION violation.
_INVALID_ROW_CLASSES = frozenset({"22", "23", "44"})


def classify_error(err: BaseException) -> ErrorKind:
    """Sort a failed write by its SQLSTATE, or by what failed when there is none."""
    if isinstance(err, asyncpg.PostgresError):
        state = str(getattr(err, "sqlstate", "") or "")
        if state in _TRANSIENT_STATES or state[:2] in _TRANSIENT_CLASSES:
            return ErrorKind.TRANSIENT
        if state[:2] in _INVALID_ROW_CLASSES:
            return ErrorKind.INVALID_ROW
        return ErrorKind.OTHER
    # No SQLSTATE: the connection itself failed (refused, reset, closed, timed out) or the
    # client lost its footing on one (a stale statement cache): a new attempt starts clean.
    if isinstance(
        err,
        OSError | TimeoutError | asyncpg.InterfaceError | asyncpg.exceptions.InternalClientError,
    ):
        return ErrorKind.TRANSIENT
    return ErrorKind.OTHER


class MigrationError(SambungError):
    error_id = "db.migration_failed"
    title = "Migration failed"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations() -> list[Migration]:
    found: list[Migration] = []
    for entry in resources.files("sambung.engine.migrations").iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migrations share a version number", versions=versions)
    return found


async def connect_pool(url: str, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    try:
        pool = await asyncpg.create_pool(
            url, min_size=min_size, max_size=max_size, command_timeout=10
        )
    except (OSError, asyncpg.PostgresError) as err:
        raise DatabaseUnavailable(f"cannot connect to PostgreSQL: {err}") from err
    assert pool is not None
    return pool


async def migrate(conn: Conn) -> list[Migration]:
    """Apply pending migrations; return the ones applied now."""
    applied_now: list[Migration] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
        done = {r["version"]: r for r in rows}
        for m in load_migrations():
            if m.version in done:
                if done[m.version]["checksum"] != m.checksum:
                    raise MigrationError(
                        f"migration {m.version:04d}_{m.name} changed after it was applied",
                        version=m.version,
                    )
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    m.version,
                    m.name,
                    m.checksum,
                )
            log.info("db.migration_applied", version=m.version, name=m.name)
            applied_now.append(m)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    return applied_now


async def pending_migrations(conn: Conn) -> list[Migration]:
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    done: set[int] = set()
    if exists:
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
    return [m for m in load_migrations() if m.version not in done]
