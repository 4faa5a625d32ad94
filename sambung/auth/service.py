"""Logins, sessions, users and the audit trail.

Sessions live in PostgreSQL so a restart or a second engine keeps everyone logged in. A
session ends at its absolute expiry (a shift), after an idle period, at logout, or when the
user is disabled or their password changes. Audit entries travel through the fact writer, so
an audit line is never lost while PostgreSQL is away: it waits in order, or in the spool.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import asyncpg
import structlog
from prometheus_client import Counter

from sambung.auth import passwords, ratelimit, store
from sambung.auth.model import (
    LANGUAGES,
    MAX_PASSWORD,
    MIN_PASSWORD,
    USER_ROLES,
    USERNAME,
    BadCredentials,
    Identity,
    InvalidUser,
    RateLimited,
    Role,
    Session,
    User,
    UserExists,
    UserNotFound,
)
from sambung.auth.ratelimit import InFlight, Limits
from sambung.engine.db import DB_ERRORS, Conn
from sambung.engine.errors import DatabaseUnavailable
from sambung.engine.facts import FactWriter

log = structlog.get_logger(__name__)

# last_seen_at is written at most this often per session: a screen polling every second must
# not turn into a write per second.
TOUCH_EVERY = timedelta(seconds=60)
# A WebSocket ticket is asked for just before the socket is opened: long enough for a slow
# network, too short to be worth stealing from wherever it is seen.
TICKET_SECONDS = 30
# The old rows of the shared login windows are cleared at most this often per engine.
PURGE_EVERY = 300.0
# What a refusal for a crowd of attempts at once says: the crowd is gone within a second.
BUSY_RETRY_SECONDS = 1.0


@dataclass(frozen=True)
class SessionPolicy:
    lifetime: timedelta = timedelta(hours=12)
    idle: timedelta = timedelta(hours=2)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class AuthService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        facts: FactWriter,
        policy: SessionPolicy,
        limits: Limits,
        agent_exists: Callable[[str], bool],
        logins: Counter | None = None,
        # Seconds since the epoch: the login windows are shared with other engines.
        clock: Callable[[], float] = time.time,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._pool = pool
        self._facts = facts
        self.policy = policy
        self.limits = limits
        self._in_flight = InFlight(limits)
        # Logins between their first check and their answer may hold at most this many
        # hashing threads; one more is refused rather than queued behind them (a queue of
        # Argon2 jobs is memory and minutes of CPU an attacker chooses).
        self.verify_slots = passwords.HASH_THREADS
        self.verifications_in_flight = 0
        self._agent_exists = agent_exists
        self._logins = logins
        self._clock = clock
        self._wall = wall
        self._purged_at = 0.0

    # ---- audit ------------------------------------------------------------------------------

    def audit(
        self,
        actor: str,
        role: str,
        action: str,
        outcome: str,
        # Positional-only, so that no detail key can collide with these names.
        /,
        *,
        target: str = "",
        status: int | None = None,
        ip: str | None = None,
        **detail: Any,
    ) -> None:
        self._facts.record(
            store.AuditFact(
                audit_id=uuid.uuid4().hex,
                at=self._wall(),
                actor=actor[:128],
                role=role,
                action=action[:200],
                target=target[:500],
                outcome=outcome,
                status=status,
                ip=ip,
                detail=json.dumps(detail, default=str, separators=(",", ":")),
            )
        )

    async def audit_entries(
        self,
        actor: str | None,
        action: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        async with self._pool.acquire() as conn:
            rows = await store.audit_entries(conn, actor, action, since, until, limit)
        return [{**r, "at": r["at"].isoformat(), "detail": json.loads(r["detail"])} for r in rows]

    # ---- sessions ---------------------------------------------------------------------------

    async def login(
        self, username: str, password: str, ip: str, user_agent: str | None
    ) -> tuple[str, Session]:
        """A new session token for these credentials; refused alike for every wrong reason.

        In order: a place among the checks running now (429 at once when this user, this
        address or the hashing threads are busy), then a slot in the shared windows, taken
        before the password is checked (429 with the window's wait), then the check."""
        if self.verifications_in_flight >= self.verify_slots:
            self._refuse(username, ip, BUSY_RETRY_SECONDS, "busy")
        if not self._in_flight.enter(username, ip):
            self._refuse(username, ip, BUSY_RETRY_SECONDS, "in_flight")
        self.verifications_in_flight += 1
        try:
            return await self._login(username, password, ip, user_agent)
        finally:
            self.verifications_in_flight -= 1
            self._in_flight.leave(username, ip)

    def _refuse(self, username: str, ip: str, wait: float, why: str) -> NoReturn:
        self.audit(username, "anonymous", "auth.login", "rate_limited", ip=ip, status=429, why=why)
        self._count("rate_limited")
        if why in ("busy", "in_flight"):
            detail = f"other logins are being checked; try again in {int(wait)} s"
        else:
            detail = f"too many login attempts; try again in {int(wait)} s"
        raise RateLimited(detail, wait, why)

    async def _login(
        self, username: str, password: str, ip: str, user_agent: str | None
    ) -> tuple[str, Session]:
        now = self._clock()
        try:
            async with self._pool.acquire() as conn:
                wait = await self._count_attempt(conn, username, ip, now)
                found = None if wait is not None else await store.credentials(conn, username)
        except DB_ERRORS as err:
            raise DatabaseUnavailable(f"logins are unavailable: {err}") from err
        if wait is not None:
            self._refuse(username, ip, wait, "window")
        await self._purge_now_and_then(now)
        user, stored = found if found is not None else (None, None)
        ok = await passwords.verify(stored, password)
        if not ok or user is None or user.disabled:
            # The attempt stays counted.
            why = "unknown_user" if user is None else "disabled" if user.disabled else "password"
            self.audit(username, "anonymous", "auth.login", "failed", ip=ip, status=401, why=why)
            self._count("failed")
            raise BadCredentials("wrong username or password")
        token = secrets.token_urlsafe(32)
        wall = self._wall()
        session = Session(
            user, token_hash(token), secrets.token_urlsafe(24), wall + self.policy.lifetime
        )
        async with self._pool.acquire() as conn:
            async with conn.transaction():
                _, addr_times = await store.lock_login_windows(conn, username, ip)
                await store.save_login_windows(
                    conn, username, ip, (), ratelimit.succeeded(addr_times, now)
                )
            if stored is not None and passwords.needs_rehash(stored):
                # Parameters were raised since this hash was made: upgrade it while we have
                # the password in hand.
                await store.set_password_hash(
                    conn, user.username, await passwords.hash_async(password)
                )
            await store.insert_session(
                conn,
                session.token_hash,
                user.username,
                session.csrf_token,
                wall,
                session.expires_at,
                ip,
                (user_agent or "")[:300] or None,
            )
        self.audit(user.username, user.role.value, "auth.login", "ok", ip=ip, status=200)
        self._count("ok")
        return token, session

    async def _count_attempt(self, conn: Conn, username: str, ip: str, now: float) -> float | None:
        """Count this attempt in the shared windows, or say how long to wait (then nothing is
        counted). Read, decision and write happen under the address's row lock."""
        async with conn.transaction():
            user_times, addr_times = await store.lock_login_windows(conn, username, ip)
            admitted = ratelimit.admit(user_times, addr_times, self.limits, now)
            if admitted.retry_after is None:
                await store.save_login_windows(conn, username, ip, admitted.user, admitted.address)
        return admitted.retry_after

    async def _purge_now_and_then(self, now: float) -> None:
        if now - self._purged_at < PURGE_EVERY:
            return
        self._purged_at = now
        try:
            await self.purge_login_attempts()
        except DB_ERRORS as err:
            log.warning("auth.purge_failed", error=str(err))

    async def purge_login_attempts(self) -> int:
        """Remove the windows whose newest attempt has left the window (they count nothing)."""
        async with self._pool.acquire() as conn:
            return await store.purge_login_attempts(
                conn, self._clock() - self.limits.window_seconds
            )

    def _count(self, outcome: str) -> None:
        if self._logins is not None:
            self._logins.labels(outcome=outcome).inc()

    async def resolve(self, token: str) -> Session | None:
        now = self._wall()
        try:
            async with self._pool.acquire() as conn:
                return await self._live(conn, token_hash(token), now)
        except DB_ERRORS as err:
            # Sessions cannot be checked: 503, not 401 (the token may well be good). Configured
            # API tokens are checked before this and keep working.
            raise DatabaseUnavailable(f"sessions cannot be checked: {err}") from err

    async def _live(self, conn: Conn, th: bytes, now: datetime) -> Session | None:
        found = await store.live_session(conn, th, now, now - self.policy.idle)
        if found is None:
            return None
        session, last_seen = found
        if now - last_seen >= TOUCH_EVERY:
            await store.touch_session(conn, th, now)
        return session

    async def logout(self, session: Session, ip: str | None) -> None:
        async with self._pool.acquire() as conn:
            await store.end_session(conn, session.token_hash, self._wall(), "logout")
        u = session.user
        self.audit(u.username, u.role.value, "auth.logout", "ok", ip=ip, status=204)

    async def session_ended(self, session: Session) -> str | None:
        """Why this session no longer stands (logout, expired, idle, user_disabled,
        password_changed), or None while it does. Asking does not keep it alive: a socket left
        open must not stop a session from going idle."""
        now = self._wall()
        try:
            async with self._pool.acquire() as conn:
                row = await store.session_standing(conn, session.token_hash)
        except DB_ERRORS as err:
            raise DatabaseUnavailable(f"sessions cannot be checked: {err}") from err
        if row is None:
            return "ended"
        if row["ended_reason"]:
            return str(row["ended_reason"])
        if row["disabled"]:
            return "user_disabled"
        if row["expires_at"] <= now:
            return "expired"
        if row["last_seen_at"] <= now - self.policy.idle:
            return "idle"
        return None

    # ---- WebSocket tickets ------------------------------------------------------------------

    async def issue_ticket(self, ident: Identity) -> tuple[str, int]:
        """A single-use ticket that opens a WebSocket as ``ident`` within ``TICKET_SECONDS``.

        Browsers cannot set headers on a WebSocket, and a token in its URL ends up in proxy
        and server logs and in the browser's history; a ticket seen there is spent or expired.
        """
        ticket = secrets.token_urlsafe(32)
        now = self._wall()
        s = ident.session
        async with self._pool.acquire() as conn:
            await store.insert_ws_ticket(
                conn,
                token_hash(ticket),
                None if s is None else s.token_hash,
                ident.name if s is None else None,
                ident.role,
                ident.agent_id,
                now + timedelta(seconds=TICKET_SECONDS),
                now,
            )
        return ticket, TICKET_SECONDS

    async def redeem_ticket(self, ticket: str) -> Identity | None:
        """Who the ticket was issued to, once: None when it is unknown, spent, expired, or its
        session has ended meanwhile."""
        now = self._wall()
        try:
            async with self._pool.acquire() as conn:
                row = await store.take_ws_ticket(conn, token_hash(ticket), now)
                if row is None:
                    return None
                if row["session_hash"] is None:
                    return Identity(row["token_name"], Role(row["role"]), row["agent_id"])
                session = await self._live(conn, bytes(row["session_hash"]), now)
        except DB_ERRORS as err:
            raise DatabaseUnavailable(f"tickets cannot be checked: {err}") from err
        return None if session is None else self.identity(session)

    # ---- users ------------------------------------------------------------------------------

    async def users(self) -> list[User]:
        async with self._pool.acquire() as conn:
            return await store.list_users(conn)

    async def user(self, username: str) -> User:
        async with self._pool.acquire() as conn:
            found = await store.get_user(conn, username)
        if found is None:
            raise UserNotFound(f"no user {username!r}")
        return found

    def _check_agent(self, role: Role, agent_id: str | None) -> None:
        if role not in USER_ROLES:
            raise InvalidUser("'role' is agent, supervisor or admin")
        if role is Role.AGENT and not agent_id:
            raise InvalidUser("an agent's login needs 'agent_id' (the ACD agent it acts as)")
        if agent_id is not None and not self._agent_exists(agent_id):
            raise InvalidUser(f"'agent_id' {agent_id!r} is not an agent in [acd]")

    async def create_user(
        self,
        username: str,
        password: str,
        role: Role,
        agent_id: str | None = None,
        display_name: str = "",
        language: str = "id",
    ) -> User:
        if not USERNAME.match(username):
            raise InvalidUser("'username' is 1 to 64 letters, digits or . _ @ -")
        check_password(password)
        if language not in LANGUAGES:
            raise InvalidUser(f"'language' is one of {', '.join(LANGUAGES)}")
        self._check_agent(role, agent_id)
        hashed = await passwords.hash_async(password)
        async with self._pool.acquire() as conn:
            try:
                return await store.insert_user(
                    conn, username, hashed, role, agent_id, display_name, language
                )
            except asyncpg.UniqueViolationError as err:
                if "users_agent" in str(err.constraint_name):
                    raise UserExists(f"agent {agent_id!r} already has a login") from err
                raise UserExists(f"user {username!r} exists") from err

    async def update_user(self, username: str, changes: dict[str, Any]) -> User:
        """Apply an admin's changes; a new password or a disabled account ends its sessions."""
        current = await self.user(username)
        cols: dict[str, Any] = {}
        end_reason = None
        if "password" in changes:
            check_password(changes["password"])
            cols["password_hash"] = await passwords.hash_async(changes["password"])
            end_reason = "password_changed"
        role = Role(changes.get("role", current.role.value))
        agent_id = changes.get("agent_id", current.agent_id)
        if "role" in changes or "agent_id" in changes:
            self._check_agent(role, agent_id)
            cols["role"], cols["agent_id"] = role.value, agent_id
        if "display_name" in changes:
            cols["display_name"] = changes["display_name"]
        if "language" in changes:
            if changes["language"] not in LANGUAGES:
                raise InvalidUser(f"'language' is one of {', '.join(LANGUAGES)}")
            cols["language"] = changes["language"]
        if "disabled" in changes:
            cols["disabled"] = bool(changes["disabled"])
            if cols["disabled"]:
                end_reason = "user_disabled"
        if not cols:
            return current
        async with self._pool.acquire() as conn, conn.transaction():
            try:
                updated = await store.update_user(conn, username, cols)
            except asyncpg.UniqueViolationError as err:
                raise UserExists(f"agent {agent_id!r} already has a login") from err
            if end_reason is not None:
                await store.end_user_sessions(conn, username, self._wall(), end_reason)
        if updated is None:
            raise UserNotFound(f"no user {username!r}")
        return updated

    async def disable_user(self, username: str) -> None:
        # Rows stay: the audit log and dispositions name this user.
        await self.update_user(username, {"disabled": True})

    @staticmethod
    def identity(session: Session) -> Identity:
        u = session.user
        # An agent is known to the ACD and the recordings feature by agent id.
        name = u.agent_id if u.role is Role.AGENT and u.agent_id else u.username
        return Identity(name, u.role, u.agent_id, session)


def check_password(password: Any) -> None:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidUser(f"'password' is {MIN_PASSWORD} to {MAX_PASSWORD} characters")
