"""Which engine drives Asterisk: one active engine holds a lease in PostgreSQL, the others wait.

The lease is a row (``engine_lease``) with a holder, a fencing token and an expiry in the
database's clock. A standby takes it once it has expired; the holder renews it well before; a
clean stop lets it go at once, so a deploy hands over without waiting for the expiry.

Fencing, without trusting anyone's wall clock: a renewal that left this process at monotonic
time ``t`` and succeeded set the expiry to the database's ``now() + ttl``, and the database's
``now()`` was read after ``t``. So ``t + ttl`` on this machine comes no later than the expiry a
standby will see. The holder stops acting at ``t + ttl - margin`` unless a later renewal has
succeeded, whether the renewal failed, hung or was never answered; a standby acts only once
the database says the lease expired. Only the rate of the local clock matters, never its
setting or another machine's. A holder that finds the row taken by someone else stops at once.

Why a row and not an advisory lock: a lock held by a connection whose engine is cut off from
the database is released only when PostgreSQL notices the dead connection (TCP keepalive,
minutes by default), and the engine holding it cannot tell how long that will be. The row's
expiry bounds the takeover (``ttl`` after the last renewal) and makes the fencing rule above
possible.

Instance ids: each engine heartbeats its row in ``engine_instances``; a second engine started
with an id whose row is still being renewed is refused (``DuplicateInstance``). A row left by a
process that died is taken over as soon as its heartbeat lapses, or at once when it names a
process on this machine that no longer exists.
"""

from __future__ import annotations

import asyncio
import enum
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import structlog

from sambung.engine.db import DB_ERRORS, Conn
from sambung.engine.errors import SambungError

log = structlog.get_logger(__name__)

LEASE_NAME = "active"
# A standby asks for the lease at least this long after the holder's would lapse, and never
# more often: the holder's renewal may land just before the expiry.
STANDBY_MIN_POLL = 0.05
# A statement that failed, or took longer than the lease can wait for it.
_LEASE_ERRORS: tuple[type[BaseException], ...] = (*DB_ERRORS, TimeoutError)


class DuplicateInstance(SambungError):
    """Another engine with the same instance id is running."""

    error_id = "engine.duplicate_instance"
    http_status = 409
    title = "Duplicate engine instance"


@dataclass(frozen=True, slots=True)
class LeaseTimes:
    """How long a lease lasts, how often it is renewed, and the holder's safety margin."""

    ttl_seconds: float = 6.0
    renew_every_seconds: float = 2.0
    margin_seconds: float = 0.5

    def __post_init__(self) -> None:
        # Two renewals must fit in a lease, so that one lost renewal never fences a healthy
        # engine; the margin covers the time to stop acting.
        if not 0 < self.margin_seconds < self.ttl_seconds:
            raise ValueError("the margin must be above 0 and below the lease's length")
        if self.renew_every_seconds * 2 > self.ttl_seconds - self.margin_seconds:
            raise ValueError("the lease must outlast two renewals plus the margin")


# ---- SQL ----------------------------------------------------------------------------------


async def try_acquire(conn: Conn, holder: str, ttl: float) -> int | None:
    """Take the lease if it is free, expired or already ours: the new fencing token."""
    got = await acquire(conn, holder, ttl)
    return None if got is None else got[0]


async def acquire(conn: Conn, holder: str, ttl: float) -> tuple[int, str] | None:
    """As ``try_acquire``; with the holder before us ("" for none), to tell a takeover from a
    restart of the same engine."""
    await conn.execute(
        """INSERT INTO engine_lease (name, holder, token, acquired_at, expires_at)
           VALUES ($1, '', 0, now(), '-infinity') ON CONFLICT (name) DO NOTHING""",
        LEASE_NAME,
    )
    # The CTE reads the row as it was before the UPDATE, in the same statement.
    row = await conn.fetchrow(
        """WITH before AS (SELECT holder FROM engine_lease WHERE name = $1)
           UPDATE engine_lease
              SET holder = $2, token = token + 1, acquired_at = now(),
                  expires_at = now() + make_interval(secs => $3)
            WHERE name = $1 AND (expires_at < now() OR holder = $2)
        RETURNING token, (SELECT holder FROM before) AS previous""",
        LEASE_NAME,
        holder,
        ttl,
    )
    return None if row is None else (int(row["token"]), str(row["previous"] or ""))


async def renew(conn: Conn, holder: str, token: int, ttl: float) -> bool:
    """Extend our lease; False if it is no longer ours (another engine took it)."""
    row = await conn.fetchval(
        """UPDATE engine_lease SET expires_at = now() + make_interval(secs => $4)
            WHERE name = $1 AND holder = $2 AND token = $3
        RETURNING token""",
        LEASE_NAME,
        holder,
        token,
        ttl,
    )
    return row is not None


async def release(conn: Conn, holder: str, token: int) -> None:
    """Let the lease go now, so a standby need not wait for the expiry."""
    await conn.execute(
        """UPDATE engine_lease SET expires_at = '-infinity'
            WHERE name = $1 AND holder = $2 AND token = $3""",
        LEASE_NAME,
        holder,
        token,
    )


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    holder: str
    token: int
    expires_in: float  # seconds, by the database's clock; negative once expired


async def current_holder(conn: Conn) -> LeaseHolder | None:
    row = await conn.fetchrow(
        """SELECT holder, token, extract(epoch FROM expires_at - now())::float8 AS left
             FROM engine_lease WHERE name = $1 AND holder <> ''""",
        LEASE_NAME,
    )
    if row is None:
        return None
    left = row["left"]
    return LeaseHolder(row["holder"], row["token"], float("-inf") if left is None else left)


# ---- instance ids -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InstanceRow:
    run_id: str
    host: str
    pid: int
    seen_at: datetime


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


async def claim_instance(
    conn: Conn,
    instance_id: str,
    run_id: str,
    stale_after: float,
    *,
    host: str | None = None,
    pid: int | None = None,
    poll_seconds: float = 0.5,
) -> None:
    """Register this run under ``instance_id``; DuplicateInstance if another run is alive.

    A row whose heartbeat is older than ``stale_after`` belongs to a run that is gone. A fresh
    row may still be a run that was just killed: it is taken at once if it names a process on
    this machine that no longer exists, else this waits until its heartbeat either lapses (the
    run is gone) or moves (the run is alive: refused).
    """
    host = host or socket.gethostname()
    pid = os.getpid() if pid is None else pid
    first_seen: datetime | None = None
    deadline = time.monotonic() + stale_after + poll_seconds * 2
    while True:
        claimed = await conn.fetchval(
            """INSERT INTO engine_instances (instance_id, run_id, host, pid, started_at, seen_at)
               VALUES ($1, $2, $3, $4, now(), now())
               ON CONFLICT (instance_id) DO UPDATE
                  SET run_id = EXCLUDED.run_id, host = EXCLUDED.host, pid = EXCLUDED.pid,
                      started_at = now(), seen_at = now()
                WHERE engine_instances.run_id = EXCLUDED.run_id
                   OR engine_instances.seen_at < now() - make_interval(secs => $5)
            RETURNING run_id""",
            instance_id,
            run_id,
            host,
            pid,
            stale_after,
        )
        if claimed is not None:
            return
        row = await conn.fetchrow(
            "SELECT run_id, host, pid, seen_at FROM engine_instances WHERE instance_id = $1",
            instance_id,
        )
        if row is None:
            continue  # it went away meanwhile (a clean stop): claim again
        other = InstanceRow(row["run_id"], row["host"], row["pid"], row["seen_at"])
        if other.host == host and other.pid != pid and not _pid_alive(other.pid):
            # A run on this machine that died (killed, crashed): no need to wait it out.
            await conn.execute(
                "DELETE FROM engine_instances WHERE instance_id = $1 AND run_id = $2",
                instance_id,
                other.run_id,
            )
            log.info("engine.instance_taken_over", instance=instance_id, previous_pid=other.pid)
            continue
        if first_seen is not None and other.seen_at > first_seen:
            raise _duplicate(instance_id, other)
        first_seen = first_seen or other.seen_at
        if time.monotonic() >= deadline:
            raise _duplicate(instance_id, other)
        await asyncio.sleep(poll_seconds)


def _duplicate(instance_id: str, other: InstanceRow) -> DuplicateInstance:
    return DuplicateInstance(
        f"another engine runs as instance {instance_id!r} (host {other.host}, pid {other.pid}, "
        f"alive at {other.seen_at.isoformat()}): give each engine its own [engine] instance_id",
        instance_id=instance_id,
        host=other.host,
        pid=other.pid,
    )


async def heartbeat(conn: Conn, instance_id: str, run_id: str) -> bool:
    """Keep this run's row fresh; False if another run took the id (it thought us dead)."""
    row = await conn.fetchval(
        """UPDATE engine_instances SET seen_at = now()
            WHERE instance_id = $1 AND run_id = $2 RETURNING run_id""",
        instance_id,
        run_id,
    )
    return row is not None


async def leave_instance(conn: Conn, instance_id: str, run_id: str) -> None:
    await conn.execute(
        "DELETE FROM engine_instances WHERE instance_id = $1 AND run_id = $2",
        instance_id,
        run_id,
    )


# ---- the lease keeper ---------------------------------------------------------------------


class Role(enum.Enum):
    STANDBY = "standby"
    ACTIVE = "active"


class LeaseKeeper:
    """Holds the lease for this engine, or waits for it; says when to start and stop acting.

    ``on_active(token)`` runs when this engine becomes the active one; ``on_fenced()`` the
    moment it must stop acting (its lease lapsed or was taken). Both are synchronous and quick:
    they start or stop work, they do not wait for it. ``acting()`` is the check every action
    can make: True only while the lease is held and its local deadline has not passed.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        instance_id: str,
        run_id: str,
        times: LeaseTimes,
        on_active: Callable[[int], None],
        on_fenced: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._instance = instance_id
        self._run = run_id
        self.times = times
        self._on_active = on_active
        self._on_fenced = on_fenced
        self._clock = clock
        self.role = Role.STANDBY
        self.token: int | None = None
        # Who held the lease before this engine took it ("" for nobody): another instance
        # means a takeover, whose open rows this engine now owns.
        self.previous_holder = ""
        self._deadline = float("-inf")

    def acting(self) -> bool:
        return self.role is Role.ACTIVE and self._clock() < self._deadline

    @property
    def deadline_in(self) -> float:
        """Seconds until this engine must stop acting, unless a renewal succeeds first."""
        return self._deadline - self._clock()

    async def run(self) -> None:
        """Wait for the lease, hold it, and go back to waiting whenever it is lost."""
        t = self.times
        try:
            while True:
                if self.role is Role.STANDBY:
                    expires_in = await self._try_acquire()
                    if self.role is Role.STANDBY:
                        # Ask again when the holder's lease would lapse if it is not renewed
                        # (just after, by the database's clock), or at the usual interval if
                        # that comes first: a crashed holder is replaced as soon as it can be.
                        wait = t.renew_every_seconds
                        if expires_in is not None:
                            wait = min(wait, max(STANDBY_MIN_POLL, expires_in + STANDBY_MIN_POLL))
                        await asyncio.sleep(wait)
                    continue
                await self._sleep_until_renewal()
                if self._clock() >= self._deadline:
                    self._fence("the lease's local deadline passed without a renewal")
                    continue
                await self._renew()
        finally:
            if self.role is Role.ACTIVE:
                self._fence("the lease keeper stopped")

    async def _sleep_until_renewal(self) -> None:
        t = self.times
        # The last renewal started at deadline - (ttl - margin); the next is due after that.
        due = self._deadline - (t.ttl_seconds - t.margin_seconds) + t.renew_every_seconds
        await asyncio.sleep(max(0.0, min(due, self._deadline) - self._clock()))

    async def _try_acquire(self) -> float | None:
        """Take the lease if it can be had. If not: seconds until the holder's lease lapses
        unless renewed (None when unknown)."""
        started = self._clock()
        try:
            async with asyncio.timeout(self.times.renew_every_seconds):
                async with self._pool.acquire() as conn:
                    await heartbeat(conn, self._instance, self._run)
                    got = await acquire(conn, self._instance, self.times.ttl_seconds)
                    holder = None if got is not None else await current_holder(conn)
        except _LEASE_ERRORS as err:
            log.debug("lease.acquire_failed", error=str(err))
            return None
        if got is None:
            return None if holder is None else holder.expires_in
        token, self.previous_holder = got
        self.token = token
        self._deadline = started + self.times.ttl_seconds - self.times.margin_seconds
        self.role = Role.ACTIVE
        log.warning(
            "lease.acquired", instance=self._instance, token=token, previous=self.previous_holder
        )
        self._on_active(token)
        return None

    async def _renew(self) -> None:
        assert self.token is not None
        started = self._clock()
        left = self._deadline - started
        try:
            # Never wait past the deadline: a renewal that hangs is one that failed.
            async with asyncio.timeout(left):
                async with self._pool.acquire() as conn:
                    ours = await renew(conn, self._instance, self.token, self.times.ttl_seconds)
                    await heartbeat(conn, self._instance, self._run)
        except _LEASE_ERRORS as err:
            log.warning("lease.renew_failed", error=str(err), deadline_in=round(left, 2))
            # Try again soon; the deadline check in run() fences if none succeeds in time.
            await asyncio.sleep(min(0.5, max(0.0, self._deadline - self._clock())))
            return
        if not ours:
            self._fence("another engine holds the lease")
            return
        self._deadline = started + self.times.ttl_seconds - self.times.margin_seconds

    def _fence(self, why: str) -> None:
        log.error("lease.fenced", instance=self._instance, token=self.token, reason=why)
        self.role = Role.STANDBY
        self._deadline = float("-inf")
        self._on_fenced()

    async def release(self) -> None:
        """A clean stop: stop acting, then let the lease go at once."""
        token = self.token
        if self.role is Role.ACTIVE:
            self._fence("stopping")
        try:
            async with asyncio.timeout(self.times.renew_every_seconds):
                async with self._pool.acquire() as conn:
                    # Even when the keeper was already stopped (and so fenced itself): the row
                    # changes only if it still names us with our token.
                    if token is not None:
                        await release(conn, self._instance, token)
                    await leave_instance(conn, self._instance, self._run)
        except _LEASE_ERRORS as err:
            log.warning("lease.release_failed", error=str(err))
