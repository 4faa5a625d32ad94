"""The dialer's durable facts: what happened to an attempt after its row was written.

The attempt row itself is not a fact: it is written synchronously, with its calls row, before
the originate (``dialer.store.begin_attempts``), so no call is ever placed untracked. What
follows (answer, AMD verdict, agent connected, the end, the record's next schedule) goes
through the engine's fact writer, so a database outage delays these rows but loses none.
Amounts travel as strings and dates as ISO text: the writer's spool file is JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sambung.engine.facts import Fact, register_facts


@dataclass(frozen=True, slots=True)
class AttemptAnsweredFact(Fact):
    sql = """UPDATE dial_attempts SET answered_at = $2
             WHERE attempt_id = $1 AND answered_at IS NULL"""
    attempt_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class AttemptAmdFact(Fact):
    sql = """UPDATE dial_attempts SET amd_status = $2, amd_cause = $3,
                 live_at = COALESCE(live_at, $4)
             WHERE attempt_id = $1"""
    attempt_id: str
    status: str
    cause: str
    live_at: datetime | None


@dataclass(frozen=True, slots=True)
class AttemptConnectedFact(Fact):
    sql = """UPDATE dial_attempts SET agent_id = $2, connected_at = $3, connect_seconds = $4,
                 live_at = COALESCE(live_at, $3)
             WHERE attempt_id = $1 AND connected_at IS NULL"""
    attempt_id: str
    agent_id: str
    at: datetime
    connect_seconds: float


@dataclass(frozen=True, slots=True)
class AttemptEndedFact(Fact):
    sql = """UPDATE dial_attempts SET ended_at = $2, outcome = $3, hangup_cause = $4,
                 sip_code = $5, connect_seconds = COALESCE(connect_seconds, $6),
                 live_at = COALESCE(live_at, $7)
             WHERE attempt_id = $1 AND ended_at IS NULL"""
    attempt_id: str
    at: datetime
    outcome: str
    cause: int | None
    sip_code: int | None
    connect_seconds: float | None
    live_at: datetime | None


@dataclass(frozen=True, slots=True)
class RecordScheduledFact(Fact):
    """Where a record stands after an attempt or a disposition.

    ``bad_phone`` (if any) is dropped from the numbers to try; a record left with none stops.
    A stopped record (paid, DNC) is never moved again by a late fact.
    """

    sql = """UPDATE dial_records SET
                 bad_phones = CASE WHEN $6::text IS NULL THEN bad_phones
                                   ELSE array_append(bad_phones, $6::text) END,
                 phones = CASE WHEN $6::text IS NULL THEN phones
                               ELSE array_remove(phones, $6::text) END,
                 state = CASE WHEN $6::text IS NOT NULL
                                   AND cardinality(array_remove(phones, $6::text)) = 0
                              THEN 'stopped' ELSE $2 END,
                 stop_reason = CASE WHEN $6::text IS NOT NULL
                                         AND cardinality(array_remove(phones, $6::text)) = 0
                                    THEN 'no_phone' ELSE $5 END,
                 next_at = $3, last_outcome = COALESCE($4, last_outcome),
                 callback_agent = $7, updated_at = now()
             WHERE record_id = $1 AND state <> 'stopped'"""
    record_id: int
    state: str
    next_at: datetime | None
    last_outcome: str | None
    stop_reason: str | None
    bad_phone: str | None
    callback_agent: str | None


@dataclass(frozen=True, slots=True)
class DialerDispositionFact(Fact):
    sql = """INSERT INTO dispositions (call_id, agent_id, code, note, at, campaign, account_id,
                 amount, promise_date, callback_at, right_party)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::numeric, $9::text::date, $10, $11)
             ON CONFLICT (call_id, agent_id) DO UPDATE SET code = $3, note = $4, at = $5,
                 amount = $8::text::numeric, promise_date = $9::text::date, callback_at = $10,
                 right_party = $11"""
    call_id: str
    agent_id: str
    code: str
    note: str
    at: datetime
    campaign: str | None  # None: taken on an inbound queue call
    account_id: str | None
    amount: str | None
    promise_date: str | None
    callback_at: datetime | None
    right_party: bool


register_facts(
    AttemptAnsweredFact,
    AttemptAmdFact,
    AttemptConnectedFact,
    AttemptEndedFact,
    RecordScheduledFact,
    DialerDispositionFact,
)
