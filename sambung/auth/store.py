"""The auth feature's SQL: users, sessions, the audit log, the shared login windows and the
WebSocket tickets (engine.db.Conn in, values out)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from sambung.auth.model import Role, Session, User
from sambung.auth.ratelimit import Times
from sambung.engine.db import Conn
from sambung.engine.facts import Fact, register_facts


@dataclass(frozen=True, slots=True)
class AuditFact(Fact):
    sql = """INSERT INTO audit_log (audit_id, at, actor, role, action, target, outcome, status,
                 ip, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb)
             ON CONFLICT (audit_id) DO NOTHING"""
    audit_id: str
    at: datetime
    actor: str
    role: str
    action: str
    target: str
    outcome: str
    status: int | None
    ip: str | None
    detail: str  # JSON text: facts travel through the JSON-lines spool as plain values


register_facts(AuditFact)

_USER_COLUMNS = "username, role, agent_id, display_name, language, disabled, created_at"


def user_of(row: asyncpg.Record) -> User:
    return User(
        username=row["username"],
        role=Role(row["role"]),
        agent_id=row["agent_id"],
        display_name=row["display_name"],
        language=row["language"],
        disabled=row["disabled"],
        created_at=row["created_at"],
    )


async def credentials(conn: Conn, username: str) -> tuple[User, str] | None:
    row = await conn.fetchrow(
        f"SELECT {_USER_COLUMNS}, password_hash FROM users WHERE lower(username) = lower($1)",
        username,
    )
    return None if row is None else (user_of(row), row["password_hash"])


async def get_user(conn: Conn, username: str) -> User | None:
    row = await conn.fetchrow(f"SELECT {_USER_COLUMNS} FROM users WHERE username = $1", username)
    return None if row is None else user_of(row)


async def list_users(conn: Conn) -> list[User]:
    rows = await conn.fetch(f"SELECT {_USER_COLUMNS} FROM users ORDER BY username")
    return [user_of(r) for r in rows]


async def insert_user(
    conn: Conn,
    username: str,
    password_hash: str,
    role: Role,
    agent_id: str | None,
    display_name: str,
    language: str,
) -> User:
    row = await conn.fetchrow(
        f"""INSERT INTO users (username, password_hash, role, agent_id, display_name, language)
            VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_USER_COLUMNS}""",
        username,
        password_hash,
        role.value,
        agent_id,
        display_name,
        language,
    )
    assert row is not None
    return user_of(row)


async def update_user(conn: Conn, username: str, changes: dict[str, Any]) -> User | None:
    # Column names come from the service's fixed list, never from the request.
    sets = ", ".join(f"{col} = ${i + 2}" for i, col in enumerate(changes))
    row = await conn.fetchrow(
        f"UPDATE users SET {sets}, updated_at = now() WHERE username = $1"
        f" RETURNING {_USER_COLUMNS}",
        username,
        *changes.values(),
    )
    return None if row is None else user_of(row)


async def set_password_hash(conn: Conn, username: str, password_hash: str) -> None:
    await conn.execute(
        "UPDATE users SET password_hash = $2, updated_at = now() WHERE username = $1",
        username,
        password_hash,
    )


async def insert_session(
    conn: Conn,
    token_hash: bytes,
    username: str,
    csrf_token: str,
    now: datetime,
    expires_at: datetime,
    ip: str | None,
    user_agent: str | None,
) -> None:
    await conn.execute(
        """INSERT INTO user_sessions (token_hash, username, csrf_token, created_at, last_seen_at,
               expires_at, ip, user_agent)
           VALUES ($1, $2, $3, $4, $4, $5, $6, $7)""",
        token_hash,
        username,
        csrf_token,
        now,
        expires_at,
        ip,
        user_agent,
    )


async def live_session(
    conn: Conn, token_hash: bytes, now: datetime, idle_since: datetime
) -> tuple[Session, datetime] | None:
    """The session if it is still live (not ended, not past its end, not idle too long)."""
    row = await conn.fetchrow(
        f"""SELECT s.csrf_token, s.expires_at, s.last_seen_at,
                   {", ".join("u." + c.strip() for c in _USER_COLUMNS.split(","))}
            FROM user_sessions s JOIN users u USING (username)
            WHERE s.token_hash = $1 AND s.ended_at IS NULL AND s.expires_at > $2
              AND s.last_seen_at > $3 AND NOT u.disabled""",
        token_hash,
        now,
        idle_since,
    )
    if row is None:
        return None
    session = Session(user_of(row), token_hash, row["csrf_token"], row["expires_at"])
    return session, row["last_seen_at"]


async def touch_session(conn: Conn, token_hash: bytes, now: datetime) -> None:
    await conn.execute(
        "UPDATE user_sessions SET last_seen_at = $2 WHERE token_hash = $1 AND ended_at IS NULL",
        token_hash,
        now,
    )


async def end_session(conn: Conn, token_hash: bytes, now: datetime, reason: str) -> None:
    await conn.execute(
        """UPDATE user_sessions SET ended_at = $2, ended_reason = $3
           WHERE token_hash = $1 AND ended_at IS NULL""",
        token_hash,
        now,
        reason,
    )


async def end_user_sessions(conn: Conn, username: str, now: datetime, reason: str) -> int:
    status = await conn.execute(
        """UPDATE user_sessions SET ended_at = $2, ended_reason = $3
           WHERE username = $1 AND ended_at IS NULL""",
        username,
        now,
        reason,
    )
    return int(status.split()[-1])


async def audit_entries(
    conn: Conn,
    actor: str | None,
    action: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT audit_id AS id, at, actor, role, action, target, outcome, status, ip,
                  detail::text
           FROM audit_log
           WHERE ($1::text IS NULL OR actor = $1) AND ($2::text IS NULL OR action = $2)
             AND ($3::timestamptz IS NULL OR at >= $3) AND ($4::timestamptz IS NULL OR at < $4)
           ORDER BY at DESC, audit_id DESC LIMIT $5""",
        actor,
        action,
        since,
        until,
        limit,
    )
    return [dict(r) for r in rows]


# ---- login attempts (auth/ratelimit.py decides; these keep its windows for every engine) ----

_ADDRESS = ""  # the username of an address's own window: no login name is empty


async def lock_login_windows(conn: Conn, username: str, address: str) -> tuple[Times, Times]:
    """Both windows of an attempt, the address's row locked until the transaction ends.

    Every attempt from one address takes the same row lock first, and a username's window is
    keyed by its address too, so one lock serialises everything that reads and writes either
    window: two engines cannot both see room for the last attempt. The upsert creates the row
    when it is missing, so there is always a row to lock (``SELECT ... FOR UPDATE`` would lock
    nothing then)."""
    addr = await conn.fetchval(
        """INSERT INTO login_attempts (username, address) VALUES ($1, $2)
           ON CONFLICT (address, username) DO UPDATE SET username = excluded.username
           RETURNING attempts""",
        _ADDRESS,
        address,
    )
    user = await conn.fetchval(
        "SELECT attempts FROM login_attempts WHERE address = $1 AND username = $2",
        address,
        username.lower(),
    )
    return tuple(user or ()), tuple(addr)


async def save_login_windows(
    conn: Conn, username: str, address: str, user: Times, addr: Times
) -> None:
    """Write both windows back (inside the transaction that locked them)."""
    for name, times in ((username.lower(), user), (_ADDRESS, addr)):
        await conn.execute(
            """INSERT INTO login_attempts (username, address, attempts, last_at)
               VALUES ($1, $2, $3, $4)
               ON CONFLICT (address, username)
               DO UPDATE SET attempts = excluded.attempts, last_at = excluded.last_at""",
            name,
            address,
            list(times),
            max(times, default=0.0),
        )


async def purge_login_attempts(conn: Conn, before: float) -> int:
    status = await conn.execute("DELETE FROM login_attempts WHERE last_at <= $1", before)
    return int(status.split()[-1])


# ---- WebSocket tickets -----------------------------------------------------------------------


async def insert_ws_ticket(
    conn: Conn,
    ticket_hash: bytes,
    session_hash: bytes | None,
    token_name: str | None,
    role: Role,
    agent_id: str | None,
    expires_at: datetime,
    now: datetime,
) -> None:
    # Spent and expired tickets go as new ones come: the table holds a few seconds' worth.
    await conn.execute("DELETE FROM ws_tickets WHERE expires_at <= $1", now)
    await conn.execute(
        """INSERT INTO ws_tickets (ticket_hash, session_hash, token_name, role, agent_id,
               expires_at)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        ticket_hash,
        session_hash,
        token_name,
        role.value,
        agent_id,
        expires_at,
    )


async def take_ws_ticket(conn: Conn, ticket_hash: bytes, now: datetime) -> asyncpg.Record | None:
    """The ticket's row, removed in the same statement: a ticket opens one socket at most, even
    when two engines are handed it at once."""
    row: asyncpg.Record | None = await conn.fetchrow(
        """DELETE FROM ws_tickets WHERE ticket_hash = $1
           RETURNING session_hash, token_name, role, agent_id, expires_at""",
        ticket_hash,
    )
    if row is None or row["expires_at"] <= now:
        return None
    return row


async def session_standing(conn: Conn, token_hash: bytes) -> asyncpg.Record | None:
    """What decides whether a session still stands (the service says why it ended)."""
    row: asyncpg.Record | None = await conn.fetchrow(
        """SELECT s.ended_reason, s.expires_at, s.last_seen_at, u.disabled
           FROM user_sessions s JOIN users u USING (username) WHERE s.token_hash = $1""",
        token_hash,
    )
    return row
