"""A waiting caller's place in the queues, as written on the caller's own channel.

While a caller waits in a queue, the engine keeps one channel variable (``SAMBUNG_PLACE``,
written by ``asterisk/telephony.py``) saying which entry the caller is and where it stands:
the entry id, the queue, the entry's kind and priority, when the caller first queued and when
this entry joined its queue (wall clock, epoch milliseconds), the language, the relaxation
step (1 once the queue's overflow dropped the skill needs) and, for a transfer to one agent,
that agent. An engine that starts while the caller is still in the queue's holding bridge
reads it back and carries the call on at the same place (``acd/feature.py``, ``take_over``).

Why on the channel and not only in PostgreSQL: the place lives and dies with the media it
describes (a caller who hangs up takes it along), reading it back needs no database round trip
at start-up, and it is there even when PostgreSQL was away, or the engine died before its fact
writer flushed. PostgreSQL keeps the history (``queue_entries``) and the caller's context.

While the caller talks to an agent the same variable says so: the entry the talk came from,
plus the agent, the agent's leg (the other channel in the call's mixing bridge) and when the
talk began. An engine that finds the caller in its mixing bridge with such a place carries
the talk on: the agent stays on the call and its talk time counts from the original start.

No personal data goes in: no number, no name, no IVR input. Values are percent-encoded, so a
separator can never appear inside one. Pure: no I/O, no clock.

    1;e=1767000000.42-q3;q=collections;k=caller;p=0;f=1767000000123;j=1767000000123;l=en;r=0;g=0
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from urllib.parse import quote, unquote

VERSION: Final = "1"
# The kinds of entry another engine may carry on: callers who called in (directly, after a
# transfer or an overflow), and a dialer's live answer, whose attempt the dialer carries on and
# closes (an entry of an ``OWNED_KINDS`` kind is taken over only through its feature). A
# callback has no caller on the line: it is left to its own feature.
ADOPTABLE_KINDS: Final = frozenset({"caller", "transfer", "overflow", "dialer"})
OWNED_KINDS: Final = frozenset({"dialer"})


class PlaceUnreadable(ValueError):
    """The variable is there but does not say a place this engine understands."""


@dataclass(frozen=True, slots=True)
class PlaceTag:
    entry_id: str
    queue: str
    kind: str
    priority: int
    first_wall: datetime  # when the caller first queued (kept through transfers and overflows)
    entry_wall: datetime  # when this entry joined its queue (its maximum wait counts from here)
    language: str
    relax_step: int = 0  # 1: the queue's overflow relaxed the entry (any agent of the queue)
    pinned_agent: str | None = None  # a transfer to one agent
    generation: int = 0  # how many engines took the call over so far
    # A talk: the agent, the agent's leg, and when the talk began (all three, or none).
    talk_agent: str | None = None
    talk_leg: str | None = None
    talk_wall: datetime | None = None

    @property
    def talking(self) -> bool:
        return self.talk_leg is not None


def _ms(when: datetime) -> int:
    return round(when.timestamp() * 1000)


def _wall(ms: str) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, UTC)


def format_place(tag: PlaceTag) -> str:
    fields = [
        ("e", tag.entry_id),
        ("q", tag.queue),
        ("k", tag.kind),
        ("p", str(tag.priority)),
        ("f", str(_ms(tag.first_wall))),
        ("j", str(_ms(tag.entry_wall))),
        ("l", tag.language),
        ("r", str(tag.relax_step)),
        ("g", str(tag.generation)),
    ]
    if tag.pinned_agent is not None:
        fields.append(("a", tag.pinned_agent))
    if tag.talk_agent is not None and tag.talk_leg is not None and tag.talk_wall is not None:
        fields += [("ta", tag.talk_agent), ("tl", tag.talk_leg), ("tt", str(_ms(tag.talk_wall)))]
    return ";".join([VERSION, *(f"{k}={quote(v, safe='-._')}" for k, v in fields)])


def parse_place(text: str) -> PlaceTag | None:
    """The place written by ``format_place``; None for an empty value (no place).

    Raises ``PlaceUnreadable`` for anything else that is not a place of this version (a newer
    engine's, or a damaged value): such a call is not taken over.
    """
    if not text:
        return None
    version, _, rest = text.partition(";")
    if version != VERSION:
        raise PlaceUnreadable(f"version {version[:10]!r}, expected {VERSION}")
    values: dict[str, str] = {}
    for part in rest.split(";"):
        key, eq, value = part.partition("=")
        if not eq or key in values:
            raise PlaceUnreadable(f"bad field {key[:10]!r}")
        values[key] = unquote(value)
    try:
        tag = PlaceTag(
            entry_id=values["e"],
            queue=values["q"],
            kind=values["k"],
            priority=int(values["p"]),
            first_wall=_wall(values["f"]),
            entry_wall=_wall(values["j"]),
            language=values["l"],
            relax_step=int(values["r"]),
            pinned_agent=values.get("a"),
            generation=int(values["g"]),
            talk_agent=values.get("ta"),
            talk_leg=values.get("tl"),
            talk_wall=_wall(values["tt"]) if "tt" in values else None,
        )
    except KeyError as err:
        raise PlaceUnreadable(f"missing field {err.args[0]!r}") from err
    except (ValueError, OverflowError, OSError) as err:
        raise PlaceUnreadable(f"bad value: {err}") from err
    if not (tag.entry_id and tag.queue and tag.kind) or tag.relax_step not in (0, 1):
        raise PlaceUnreadable("empty entry, queue or kind, or an unknown relaxation step")
    talk = (tag.talk_agent, tag.talk_leg, tag.talk_wall)
    if any(v is not None for v in talk) and not all(talk):
        raise PlaceUnreadable("a talk needs its agent, its leg and its start")
    return tag


def rebase(wall_then: datetime, wall_now: datetime, clock_now: float) -> float:
    """``wall_then`` on the loop clock (which only durations and order use): a place taken by
    another process keeps its distance from now. A wall clock behind the other host's counts
    as no wait rather than a place in the future."""
    return clock_now - max(0.0, (wall_now - wall_then).total_seconds())
