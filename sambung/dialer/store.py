"""The dialer's SQL. Everything the pacing loop reads, and the writes that must not wait.

Two writes are synchronous on purpose: a list import (the person importing waits for its
report) and the attempt row with its calls row, written in the same transaction that takes
the record (``FOR UPDATE SKIP LOCKED``, so two engines never dial one record) and before the
originate. Everything after the originate goes through the fact writer (``dialer.facts``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from sambung.engine.db import Conn


@dataclass(frozen=True, slots=True)
class DueRecord:
    record_id: int
    campaign: str
    account_id: str
    name: str
    phones: tuple[str, ...]
    next_phone: int
    amount_due: Decimal
    due_date: date | None
    days_past_due: int
    bucket: str
    zone: str
    language: str
    extra: dict[str, Any]
    attempts: int
    callback_agent: str | None
    state: str
    next_at: datetime | None = None
    held_by: str | None = None  # a preview's hold: this agent alone may dial it ...
    held_until: datetime | None = None  # ... until then

    def phone(self) -> str:
        return self.phones[self.next_phone % len(self.phones)]


def _due(row: asyncpg.Record) -> DueRecord:
    extra = row["extra"]
    return DueRecord(
        record_id=row["record_id"],
        campaign=row["campaign"],
        account_id=row["account_id"],
        name=row["name"],
        phones=tuple(row["phones"]),
        next_phone=row["next_phone"],
        amount_due=row["amount_due"],
        due_date=row["due_date"],
        days_past_due=row["days_past_due"],
        bucket=row["bucket"],
        zone=row["zone"],
        language=row["language"],
        extra=json.loads(extra) if isinstance(extra, str) else dict(extra or {}),
        attempts=row["attempts"],
        callback_agent=row["callback_agent"],
        state=row["state"],
        next_at=row["next_at"],
        held_by=row["held_by"],
        held_until=row["held_until"],
    )


async def ensure_campaigns(conn: Conn, modes: dict[str, str]) -> dict[str, str]:
    """Make sure every configured campaign has a row; returns each one's stored state."""
    for name, mode in modes.items():
        await conn.execute(
            """INSERT INTO campaigns (name, mode) VALUES ($1, $2)
               ON CONFLICT (name) DO UPDATE SET mode = $2""",
            name,
            mode,
        )
    rows = await conn.fetch("SELECT name, state FROM campaigns WHERE name = ANY($1)", list(modes))
    return {r["name"]: r["state"] for r in rows}


async def set_campaign_state(conn: Conn, name: str, state: str) -> None:
    await conn.execute(
        "UPDATE campaigns SET state = $2, updated_at = now() WHERE name = $1", name, state
    )


async def due_records(
    conn: Conn,
    campaign: str,
    now: datetime,
    limit: int,
    *,
    for_agent: str | None = None,
    max_attempts: int | None = None,
) -> list[DueRecord]:
    """Records whose turn has come, locked for this transaction (others skip them). A record
    a preview holds is left out, except for the agent holding it (``for_agent``), first. A
    record that has had ``max_attempts`` (the campaign's, lowered since it was scheduled) is
    left out too."""
    rows = await conn.fetch(
        """SELECT * FROM dial_records
           WHERE campaign = $1 AND state IN ('pending', 'scheduled')
             AND (next_at IS NULL OR next_at <= $2) AND cardinality(phones) > 0
             AND (held_until IS NULL OR held_until <= $2 OR held_by = $4)
             AND ($5::int IS NULL OR attempts < $5)
           ORDER BY (held_by IS NOT DISTINCT FROM $4 AND held_until > $2) DESC,
                    next_at NULLS FIRST, record_id
           LIMIT $3
           FOR UPDATE SKIP LOCKED""",
        campaign,
        now,
        limit,
        for_agent,
        max_attempts,
    )
    return [_due(r) for r in rows]


async def lock_record(conn: Conn, campaign: str, record_id: int) -> DueRecord | None:
    """One record, locked for this transaction (a preview's chosen record)."""
    row = await conn.fetchrow(
        """SELECT * FROM dial_records WHERE campaign = $1 AND record_id = $2
           AND state IN ('pending', 'scheduled') FOR UPDATE""",
        campaign,
        record_id,
    )
    return None if row is None else _due(row)


async def lease(conn: Conn, record_id: int, agent_id: str, until: datetime) -> None:
    """Hold a record for one agent's preview until ``until``: nobody else is shown it, and
    only that agent may dial it meanwhile. When is it due and whose callback it is stay as
    they were, so the hold simply runs out."""
    await conn.execute(
        """UPDATE dial_records SET held_by = $2, held_until = $3, updated_at = now()
           WHERE record_id = $1""",
        record_id,
        agent_id,
        until,
    )


async def attempt_history(
    conn: Conn, account_ids: Sequence[str], since: datetime
) -> dict[str, list[datetime]]:
    """When each account was dialled since ``since`` (every campaign, every number)."""
    rows = await conn.fetch(
        """SELECT account_id, created_at FROM dial_attempts
           WHERE account_id = ANY($1) AND created_at >= $2 ORDER BY created_at""",
        list(account_ids),
        since,
    )
    out: dict[str, list[datetime]] = {a: [] for a in account_ids}
    for r in rows:
        out[r["account_id"]].append(r["created_at"])
    return out


async def dnc_hits(conn: Conn, phones: Iterable[str], accounts: Iterable[str]) -> set[str]:
    """Which of these phones and accounts are on the do-not-call list."""
    rows = await conn.fetch(
        """SELECT value FROM dnc WHERE (kind = 'phone' AND value = ANY($1))
                                   OR (kind = 'account' AND value = ANY($2))""",
        list(phones),
        list(accounts),
    )
    return {r["value"] for r in rows}


async def dnc_all(conn: Conn) -> tuple[frozenset[str], frozenset[str]]:
    rows = await conn.fetch("SELECT kind, value FROM dnc")
    phones = frozenset(r["value"] for r in rows if r["kind"] == "phone")
    accounts = frozenset(r["value"] for r in rows if r["kind"] == "account")
    return phones, accounts


async def add_dnc(conn: Conn, kind: str, values: Iterable[str], reason: str) -> int:
    vals = sorted(set(values))
    await conn.executemany(
        """INSERT INTO dnc (kind, value, reason) VALUES ($1, $2, $3)
           ON CONFLICT (kind, value) DO NOTHING""",
        [(kind, v, reason) for v in vals],
    )
    return len(vals)


@dataclass(frozen=True, slots=True)
class NewAttempt:
    attempt_id: str
    record: DueRecord
    phone: str
    mode: str


async def begin_attempt(
    conn: Conn,
    a: NewAttempt,
    *,
    at: datetime,
    engine_instance: str,
    asterisk_id: str,
    trunk: str,
) -> None:
    """The calls row, the attempt row and the record's move to ``dialing``: before the call."""
    r = a.record
    await conn.execute(
        """INSERT INTO calls (call_id, direction, channel_name, did, caller_number, caller_name,
               hotline, asterisk_id, engine_instance, started_at)
           VALUES ($1, 'dialer', $2, '', $3, $4, NULL, $5, $6, $7)""",
        a.attempt_id,
        f"PJSIP/{trunk}",
        a.phone,
        r.name,
        asterisk_id,
        engine_instance,
        at,
    )
    await conn.execute(
        """INSERT INTO dial_attempts (attempt_id, campaign, record_id, account_id, phone, mode,
               created_at, engine_instance)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        a.attempt_id,
        r.campaign,
        r.record_id,
        r.account_id,
        a.phone,
        a.mode,
        at,
        engine_instance,
    )
    await conn.execute(
        """UPDATE dial_records SET state = 'dialing', attempts = attempts + 1,
               next_phone = $2, held_by = NULL, held_until = NULL, updated_at = now()
           WHERE record_id = $1""",
        r.record_id,
        (r.next_phone + 1) % max(1, len(r.phones)),
    )


async def reschedule(conn: Conn, record_id: int, next_at: datetime | None, state: str) -> None:
    await conn.execute(
        """UPDATE dial_records SET state = $3, next_at = $2, updated_at = now()
           WHERE record_id = $1 AND state IN ('pending', 'scheduled')""",
        record_id,
        next_at,
        state,
    )


async def stop_record(conn: Conn, record_id: int, reason: str) -> None:
    await conn.execute(
        """UPDATE dial_records SET state = 'stopped', stop_reason = $2, next_at = NULL,
               updated_at = now() WHERE record_id = $1""",
        record_id,
        reason,
    )


async def recover_open_attempts(
    conn: Conn, engine_instance: str | None, hold_seconds: float
) -> int:
    """Attempts an earlier run left open before they were known to be a person (ringing, in
    AMD; of ``engine_instance``, or of every engine when None): closed as ``lost``, their
    records scheduled again ``hold_seconds`` from now.

    Their channels died with that run or are hung up by the new engine's sweep, which may take
    until it has connected: hence the hold, so that no debtor gets two lines at once. The
    attempt still counts towards the record's caps. Live answers are left open: the new
    engine may carry them on from the campaign's queue (``close_unadopted`` closes the rest).
    """
    return len(await _close_lost(conn, engine_instance, hold_seconds, live=False, keep=[]))


async def close_unadopted(
    conn: Conn, engine_instance: str | None, hold_seconds: float, keep: list[str]
) -> list[asyncpg.Record]:
    """The live answers an earlier run left open that this engine did not take over (not in
    ``keep``): closed as ``lost``, as ``recover_open_attempts`` closes the others. The engine
    lost them, not the debtor: one that no agent took counts as an abandon in the rolling
    window (``outcomes.abandoned_in_window``). Returns them, for that window."""
    return await _close_lost(conn, engine_instance, hold_seconds, live=True, keep=keep)


async def _close_lost(
    conn: Conn, engine_instance: str | None, hold_seconds: float, *, live: bool, keep: list[str]
) -> list[asyncpg.Record]:
    async with conn.transaction():
        rows = await conn.fetch(
            """UPDATE dial_attempts SET ended_at = now(), outcome = COALESCE(outcome, 'lost')
               WHERE ($1::text IS NULL OR engine_instance = $1) AND ended_at IS NULL
                 AND (live_at IS NOT NULL) = $2 AND attempt_id <> ALL($3::text[])
               RETURNING record_id, attempt_id, campaign, outcome, live_at, connected_at,
                         ended_at""",
            engine_instance,
            live,
            keep,
        )
        if rows:
            await conn.execute(
                """UPDATE dial_records
                      SET state = 'scheduled', next_at = now() + make_interval(secs => $2)
                   WHERE record_id = ANY($1) AND state = 'dialing'""",
                [r["record_id"] for r in rows],
                hold_seconds,
            )
            await conn.execute(
                """UPDATE calls SET ended_at = now(), end_reason = 'engine_restart'
                   WHERE call_id = ANY($1) AND ended_at IS NULL""",
                [r["attempt_id"] for r in rows],
            )
    return list(rows)


async def attempt_to_resume(conn: Conn, attempt_id: str) -> asyncpg.Record | None:
    """An open live answer and its record, for the engine taking it over."""
    return await conn.fetchrow(
        """SELECT r.*, a.phone AS attempt_phone, a.mode AS attempt_mode, a.live_at,
                  a.connected_at, a.agent_id
           FROM dial_attempts a JOIN dial_records r USING (record_id)
           WHERE a.attempt_id = $1 AND a.ended_at IS NULL AND a.live_at IS NOT NULL""",
        attempt_id,
    )


def due_of(row: asyncpg.Record) -> DueRecord:
    """A record as ``due_records`` gives it, from a row with its columns."""
    return _due(row)


async def window_events(conn: Conn, campaign: str, since: datetime) -> list[asyncpg.Record]:
    """The attempts of the rolling window, for its abandon and contact figures, with their
    record's bucket and zone (the pacer learns the answer rate by stratum from them)."""
    return list(
        await conn.fetch(
            """SELECT a.created_at, a.answered_at, a.live_at, a.ended_at, a.outcome,
                      a.connected_at, a.connect_seconds, r.bucket, r.zone
               FROM dial_attempts a LEFT JOIN dial_records r USING (record_id)
               WHERE a.campaign = $1 AND a.created_at >= $2
               ORDER BY a.created_at""",
            campaign,
            since,
        )
    )


async def record_counts(conn: Conn, campaign: str) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT state, count(*) AS n FROM dial_records WHERE campaign = $1 GROUP BY state",
        campaign,
    )
    out = {s: 0 for s in ("pending", "scheduled", "dialing", "done", "stopped")}
    out.update({r["state"]: r["n"] for r in rows})
    return out


async def record_by_account(conn: Conn, campaign: str, account_id: str) -> DueRecord | None:
    row = await conn.fetchrow(
        "SELECT * FROM dial_records WHERE campaign = $1 AND account_id = $2",
        campaign,
        account_id,
    )
    return None if row is None else _due(row)


async def attempt_row(conn: Conn, attempt_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT a.*, r.account_id AS r_account, r.phones, r.next_phone
           FROM dial_attempts a JOIN dial_records r USING (record_id)
           WHERE a.attempt_id = $1""",
        attempt_id,
    )


async def promises_of(conn: Conn, account_id: str, limit: int = 5) -> list[dict[str, Any]]:
    """The account's latest promises to pay from any campaign or inbound queue, newest first,
    and whether a payment came in since each was made."""
    rows = await conn.fetch(
        """SELECT d.code, d.amount, d.promise_date, d.at, d.agent_id, d.campaign,
                  EXISTS (SELECT 1 FROM payments p WHERE p.account_id = d.account_id
                          AND p.paid_at >= d.at) AS paid_since
           FROM dispositions d
           WHERE d.account_id = $1 AND d.amount IS NOT NULL AND d.promise_date IS NOT NULL
           ORDER BY d.at DESC LIMIT $2""",
        account_id,
        limit,
    )
    return [
        {
            "code": r["code"],
            "amount": str(r["amount"]),
            "date": r["promise_date"].isoformat(),
            "at": r["at"].isoformat(),
            "agent_id": r["agent_id"],
            "campaign": r["campaign"],
            "paid_since": r["paid_since"],
        }
        for r in rows
    ]


async def record_payment(
    conn: Conn,
    account_id: str,
    amount: Decimal,
    paid_at: datetime,
    reference: str,
) -> tuple[bool, list[str]]:
    """Store a payment and stop every campaign's record of the account, in one transaction.

    Returns (new payment?, campaigns whose record was stopped now). The same reference twice
    is the same payment (a webhook retried), stored once.
    """
    async with conn.transaction():
        inserted = await conn.fetchval(
            """INSERT INTO payments (account_id, amount, paid_at, reference)
               VALUES ($1, $2, $3, $4) ON CONFLICT (account_id, reference) DO NOTHING
               RETURNING payment_id""",
            account_id,
            amount,
            paid_at,
            reference,
        )
        rows = await conn.fetch(
            """UPDATE dial_records SET state = 'stopped', stop_reason = 'paid', next_at = NULL,
                   updated_at = now()
               WHERE account_id = $1 AND state <> 'stopped' RETURNING campaign""",
            account_id,
        )
    return inserted is not None, [r["campaign"] for r in rows]


async def kpis(conn: Conn, campaign: str, since: datetime) -> dict[str, Any]:
    """Telecollection figures from attempts, dispositions and payments.

    payment_rate: accounts of the campaign with a payment after their record was created,
    over the campaign's accounts. settlement_ratio: amount collected over the amount due
    at import. time_to_payment: median hours from an account's first promise to its first
    payment after it. promise_kept_rate: promises followed by payments of at least the
    promised amount by the promised date.
    """
    row = await conn.fetchrow(
        """
        WITH recs AS (
            SELECT account_id, amount_due, created_at FROM dial_records WHERE campaign = $1
        ), pays AS (
            SELECT p.account_id, p.amount, p.paid_at FROM payments p
            JOIN recs r ON r.account_id = p.account_id AND p.paid_at >= r.created_at
        ), proms AS (
            SELECT d.account_id, d.amount, d.promise_date, d.at FROM dispositions d
            WHERE d.campaign = $1 AND d.amount IS NOT NULL
        ), first_prom AS (
            SELECT account_id, min(at) AS at FROM proms GROUP BY account_id
        ), ttp AS (
            SELECT extract(epoch FROM (min(p.paid_at) - f.at)) / 3600.0 AS hours
            FROM first_prom f JOIN pays p ON p.account_id = f.account_id AND p.paid_at >= f.at
            GROUP BY f.account_id, f.at
        ), kept AS (
            SELECT pr.account_id,
                   (SELECT coalesce(sum(p.amount), 0) FROM pays p
                     WHERE p.account_id = pr.account_id AND p.paid_at >= pr.at
                       AND p.paid_at::date <= pr.promise_date) >= pr.amount AS ok
            FROM proms pr
        )
        SELECT
            (SELECT count(*) FROM recs) AS accounts,
            (SELECT coalesce(sum(amount_due), 0) FROM recs) AS amount_due,
            (SELECT count(DISTINCT account_id) FROM pays) AS paying_accounts,
            (SELECT coalesce(sum(amount), 0) FROM pays) AS collected,
            (SELECT count(*) FROM proms) AS promises,
            (SELECT coalesce(sum(amount), 0) FROM proms) AS promised,
            (SELECT count(*) FILTER (WHERE ok) FROM kept) AS promises_kept,
            (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY hours) FROM ttp) AS ttp_hours,
            (SELECT count(*) FROM dispositions WHERE campaign = $1 AND right_party) AS rpc,
            (SELECT count(*) FROM dial_attempts WHERE campaign = $1 AND created_at >= $2)
                AS attempts_today
        """,
        campaign,
        since,
    )
    assert row is not None
    accounts = row["accounts"] or 0
    due = row["amount_due"] or Decimal(0)
    promises = row["promises"] or 0
    return {
        "accounts": accounts,
        "amount_due": str(due),
        "paying_accounts": row["paying_accounts"],
        "payment_rate": round(row["paying_accounts"] / accounts, 4) if accounts else 0.0,
        "amount_collected": str(row["collected"]),
        "settlement_ratio": round(float(row["collected"] / due), 4) if due else 0.0,
        "promises": promises,
        "promised_amount": str(row["promised"]),
        "promise_kept_rate": round(row["promises_kept"] / promises, 4) if promises else 0.0,
        "time_to_payment_hours": (
            round(float(row["ttp_hours"]), 2) if row["ttp_hours"] is not None else None
        ),
        "right_party_contacts": row["rpc"],
        "attempts_today": row["attempts_today"],
    }


async def outcome_counts(conn: Conn, campaign: str, since: datetime) -> dict[str, int]:
    rows = await conn.fetch(
        """SELECT outcome, count(*) AS n FROM dial_attempts
           WHERE campaign = $1 AND created_at >= $2 AND outcome IS NOT NULL GROUP BY outcome""",
        campaign,
        since,
    )
    return {r["outcome"]: r["n"] for r in rows}


async def promises_by_campaign(conn: Conn, since: datetime) -> dict[str, dict[str, Any]]:
    """Promises to pay taken since ``since``, per campaign: count and amount (as text)."""
    rows = await conn.fetch(
        """SELECT campaign, count(*) AS n, coalesce(sum(amount), 0) AS amount
           FROM dispositions WHERE at >= $1 AND promise_date IS NOT NULL
             AND campaign IS NOT NULL
           GROUP BY campaign""",
        since,
    )
    return {r["campaign"]: {"count": r["n"], "amount": str(r["amount"])} for r in rows}


async def import_row(conn: Conn, import_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM list_imports WHERE import_id = $1", import_id)
