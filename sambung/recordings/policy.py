"""The recordings feature's decisions, pure: no I/O, no clock (times are arguments).

Which rules a call gets, who may do what, which recordings retention removes, what a Range
header asks for, where a recording is kept and how long a WAV file plays.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sambung.recordings.errors import RangeNotSatisfiable
from sambung.recordings.model import (
    Action,
    ByteRange,
    PausedSpan,
    RetentionCandidate,
    Role,
    Rules,
    ScopeRules,
)

RECORDING_PREFIX = "sambung"


def rules_for(rules: Rules, queue: str, campaign: str | None) -> ScopeRules:
    """A campaign's rules win over its queue's, which win over the defaults."""
    if campaign is not None and campaign in rules.campaigns:
        return rules.campaigns[campaign]
    return rules.queues.get(queue, rules.default)


# Who may do what. Agents control the recording of their own call (the service checks it is
# theirs) but never hear recordings; supervisors hear, download and monitor; admins do all.
_ALLOWED: dict[Role, frozenset[Action]] = {
    Role.AGENT: frozenset({Action.CONTROL}),
    Role.SUPERVISOR: frozenset(
        {Action.CONTROL, Action.LIST, Action.LISTEN, Action.DOWNLOAD, Action.MONITOR}
    ),
    Role.ADMIN: frozenset(Action),
}


def may(role: Role, action: Action) -> bool:
    return action in _ALLOWED.get(role, frozenset())


def recording_name(call_id: str, segment: int) -> str:
    """Named by call id: ``sambung/<call id>``, then ``-2``, ``-3``... for later talks of the
    same call (a transfer to another agent). The folder keeps ours apart in Asterisk's spool."""
    suffix = "" if segment == 1 else f"-{segment}"
    return f"{RECORDING_PREFIX}/{call_id}{suffix}"


_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def store_key(name: str, started_at: datetime, fmt: str) -> str:
    """``YYYY/MM/DD/<call id>[-n].<fmt>`` (UTC day the talk started): a day's recordings sit
    together, which is what retention and backups walk through."""
    base = _SAFE.sub("_", name.rpartition("/")[2]) or "recording"
    return f"{started_at:%Y/%m/%d}/{base}.{fmt}"


def expired(
    candidates: Iterable[RetentionCandidate], rules: Rules, now: datetime
) -> list[RetentionCandidate]:
    """The recordings whose queue's (or campaign's) retention has run out. 0 days keeps."""
    out: list[RetentionCandidate] = []
    for c in candidates:
        days = rules_for(rules, c.queue, c.campaign).retention_days
        if days > 0 and c.started_at + timedelta(days=days) <= now:
            out.append(c)
    return out


def shortest_retention(rules: Rules) -> int | None:
    """The fewest days any scope keeps recordings; rows younger than this need no look."""
    days = [
        r.retention_days for r in (rules.default, *rules.queues.values(), *rules.campaigns.values())
    ]
    kept = [d for d in days if d > 0]
    return min(kept) if kept else None


# One byte range: first-last, first- or -suffix; ASCII digits only (\d also takes "٣", which
# int() reads). Spaces around the numbers are tolerated, as before.
_RANGE = re.compile(r"[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)[ \t]*", re.ASCII)
# An HTTP token (RFC 9110 section 5.6.2): what a range unit is.
_UNIT = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# 10**18 bytes is an exabyte: no recording is near it, and a longer number is an attack, not a
# request (Python refuses to convert more than 4300 digits at all).
_MAX_DIGITS = 18
_MAX_HEADER = 200


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one byte range a ``Range`` header asks for (RFC 9110 section 14.1.2), or ``None``
    to send the whole file: no header, or a unit other than bytes (section 14.2: ignored).

    Raises ``RangeNotSatisfiable`` (and nothing else) for everything else that is not one
    range inside the file: a range starting past the end, an empty suffix, several ranges (we
    serve one), a malformed value, numbers of more than 18 digits. The detail never echoes the
    header: it may be anything a client sent.
    """
    if header is None:
        return None
    if len(header) > _MAX_HEADER:
        raise RangeNotSatisfiable("Range header too long", size)
    unit, sep, spec = header.partition("=")
    unit = unit.strip()
    if not sep or not _UNIT.fullmatch(unit):
        raise RangeNotSatisfiable("malformed Range header: expected bytes=<first>-<last>", size)
    if unit.lower() != "bytes":
        return None
    if "," in spec:
        raise RangeNotSatisfiable("several ranges: one range per request is served", size)
    m = _RANGE.fullmatch(spec)
    if m is None or (not m.group(1) and not m.group(2)):
        raise RangeNotSatisfiable("malformed byte range: expected <first>-<last>", size)
    first, last = m.group(1), m.group(2)
    if len(first) > _MAX_DIGITS or len(last) > _MAX_DIGITS:
        raise RangeNotSatisfiable(f"byte positions of more than {_MAX_DIGITS} digits", size)
    if not first:
        # A suffix: the last N bytes.
        n = int(last)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable(f"bytes=-{n} of a {size}-byte file", size)
        return ByteRange(max(0, size - n), size - 1)
    start = int(first)
    if last and int(last) < start:
        raise RangeNotSatisfiable("malformed byte range: the last byte is before the first", size)
    if start >= size:
        raise RangeNotSatisfiable(f"bytes={start}- of a {size}-byte file", size)
    end = int(last) if last else size - 1
    return ByteRange(start, min(end, size - 1))


def close_spans(spans: Sequence[PausedSpan], end: float) -> tuple[PausedSpan, ...]:
    """The paused spans with a still-open one closed at ``end`` (the recording's end)."""
    return tuple(PausedSpan(s.start, end if s.end is None else s.end) for s in spans)


class NotWav(ValueError):
    pass


def wav_duration(data: bytes) -> float:
    """Seconds of audio in a RIFF/WAVE file (the ``data`` chunk's size over the byte rate).

    Asterisk's ``wav`` is 16-bit mono PCM at 8 kHz (``wav16`` at 16 kHz); both say so in the
    ``fmt`` chunk, which is read rather than assumed. A ``data`` chunk that runs past the end
    of the file (a header never rewritten) counts only the bytes that are there.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise NotWav("not a RIFF/WAVE file")
    pos = 12
    byte_rate: int | None = None
    while pos + 8 <= len(data):
        chunk: bytes = data[pos : pos + 4]
        size: int = struct.unpack_from("<I", data, pos + 4)[0]
        body = pos + 8
        if chunk == b"fmt ":
            if size < 16 or body + 16 > len(data):
                raise NotWav("short fmt chunk")
            byte_rate = int(struct.unpack_from("<I", data, body + 8)[0])
        elif chunk == b"data":
            if not byte_rate:
                raise NotWav("data chunk before fmt chunk")
            present = min(size, len(data) - body)
            return float(present / byte_rate)
        pos = body + size + (size & 1)
    raise NotWav("no data chunk")
