"""Reading what a client sent (JSON bodies, times, text) into values or a 400 naming the field.

Shared by every route module so that a malformed request gets the same answer everywhere,
and never a 500: the API's fuzz test (schemathesis) found each case below.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from sambung.engine.errors import BadRequest

NUL = "\x00"


async def json_object(request: web.Request, *, required: bool = False) -> dict[str, Any]:
    """The body as a JSON object; ``{}`` for no body unless one is required."""
    if not request.can_read_body:
        if required:
            raise BadRequest("send a JSON object body")
        return {}
    try:
        body = await request.json()
    except (ValueError, LookupError, RecursionError) as err:
        # LookupError: a charset Python does not know; RecursionError: nesting too deep to
        # parse. Both are the client's body, as is text that is not JSON.
        raise BadRequest(f"the request body is not valid JSON ({type(err).__name__})") from err
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def number_id(raw: str) -> int | None:
    """A numeric id from a path or form, or None when it cannot be one."""
    # ASCII digits only: str.isdigit() also accepts digits such as "²" that int() refuses.
    if raw.isascii() and raw.isdigit() and len(raw) <= 18:
        return int(raw)
    return None


def text(value: str, key: str) -> str:
    # PostgreSQL text cannot hold NUL: refuse it here rather than fail in the database.
    if NUL in value:
        raise BadRequest(f"{key!r} must not contain NUL characters")
    return value


def when(raw: str | None, key: str) -> datetime | None:
    """An ISO 8601 time with its offset, in UTC; None when not given."""
    if raw is None:
        return None
    try:
        at = datetime.fromisoformat(raw)
    except ValueError as err:
        raise BadRequest(f"{key!r} must be ISO 8601 with an offset") from err
    if at.tzinfo is None:
        raise BadRequest(f"{key!r} needs a UTC offset (e.g. +07:00)")
    try:
        return at.astimezone(UTC)
    except OverflowError as err:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise BadRequest(f"{key!r} is out of range") from err


def opt_str(body: dict[str, Any], key: str, max_len: int = 200) -> str | None:
    """An optional string field: absent or null is None; anything else must be a non-empty
    string of at most ``max_len`` characters (PostgreSQL text cannot hold NUL, so a value with
    one names nothing stored and cannot be saved)."""
    v = body.get(key)
    if v is None:
        return None
    if not isinstance(v, str) or not v or len(v) > max_len or NUL in v:
        raise BadRequest(
            f"{key!r} must be a non-empty string of at most {max_len} characters, without NUL"
        )
    return v
