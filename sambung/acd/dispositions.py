"""Checking a disposition against its schema (pure): what the agent must fill in, and when.

Used for dialer campaigns and for queues that declare dispositions, so a promise to pay taken
on an inbound call is held to the same rules as one taken on an outbound call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sambung.acd.model import DispositionConfig
from sambung.engine.errors import SambungError


class DispositionInvalid(SambungError):
    error_id = "dialer.disposition_invalid"
    http_status = 422
    title = "Invalid disposition"


@dataclass(frozen=True)
class Checked:
    code: DispositionConfig
    amount: Decimal | None
    promise_date: date | None
    callback_at: datetime | None


def find(schema: Sequence[DispositionConfig], code: str, owner: str) -> DispositionConfig:
    for d in schema:
        if d.code == code:
            return d
    known = ", ".join(d.code for d in schema)
    raise DispositionInvalid(f"code {code!r} is not in {owner}'s dispositions ({known})")


def check(d: DispositionConfig, body: dict[str, Any], now: datetime, today: date) -> Checked:
    """The disposition's fields, or an error naming the first that is missing or wrong.

    ``today`` is the agent's local date: a promise for today is fine, yesterday is not."""
    amount = amount_of(body.get("amount")) if "amount" in d.needs else None
    promise = date_of(body.get("date")) if "date" in d.needs else None
    callback_at = when_of(body.get("callback_at")) if "callback_at" in d.needs else None
    if promise is not None and promise < today:
        raise DispositionInvalid(f"promise date {promise.isoformat()} is in the past")
    if callback_at is not None and callback_at <= now:
        raise DispositionInvalid("callback_at must be in the future")
    return Checked(d, amount, promise, callback_at)


def amount_of(v: object) -> Decimal:
    if v is None or v == "":
        raise DispositionInvalid("'amount' is required")
    try:
        amount = Decimal(str(v))
    except (InvalidOperation, ValueError) as err:
        raise DispositionInvalid(f"'amount' must be a number, got {v!r}") from err
    if not amount.is_finite() or amount <= 0 or amount > Decimal("1e15"):
        raise DispositionInvalid(f"'amount' must be a positive amount, got {v!r}")
    amount = amount.quantize(Decimal("0.01"))
    if amount <= 0:
        raise DispositionInvalid(f"'amount' is less than one sen, got {v!r}")
    return amount


def date_of(v: object) -> date:
    if not isinstance(v, str) or not v:
        raise DispositionInvalid("'date' (YYYY-MM-DD) is required")
    try:
        return date.fromisoformat(v)
    except ValueError as err:
        raise DispositionInvalid(f"'date' must be YYYY-MM-DD, got {v!r}") from err


def when_of(v: object) -> datetime:
    if not isinstance(v, str) or not v:
        raise DispositionInvalid("'callback_at' (an ISO 8601 time with its offset) is required")
    try:
        at = datetime.fromisoformat(v)
    except ValueError as err:
        raise DispositionInvalid(f"'callback_at' must be ISO 8601, got {v!r}") from err
    if at.tzinfo is None:
        raise DispositionInvalid("'callback_at' needs a UTC offset (e.g. +07:00)")
    try:
        return at.astimezone(UTC)
    except OverflowError as err:
        raise DispositionInvalid(f"'callback_at' is out of range, got {v!r}") from err
