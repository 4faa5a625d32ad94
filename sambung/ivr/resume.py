"""Where a caller stands in an IVR flow, kept so that another engine can resume the call.

While a caller is in a flow, each node it reaches is recorded with the session in PostgreSQL
(``ivr_sessions.live_state``, by the fact writer): the node, the language, the session's step
count, the engines that ran the call before, and what the flow knew there (inputs, lookups).
An engine that finds an answered caller in our Stasis app in no bridge (a caller in the IVR is
never in one) reads the session and, if it is open, resumes the flow at that node: its prompt
plays again and the caller carries on (``ivr/feature.py``, ``take_over``).

Why not a channel variable, as a queue's place is: Asterisk runs a channel's ARI commands one
after another on the channel's own thread, and a playback is one of them. Setting (or reading)
a variable on a caller who is hearing a prompt waits until the prompt ends: a mark written at
each node would hold the call's task up for the length of a prompt (checked on Asterisk
22.10.1: a POST of a variable during a 6 s prompt timed out after 5 s). A waiting caller sits
in a holding bridge, where commands run at once, so the queues are not affected. Inputs and
lookups are personal data and belong in PostgreSQL anyway.

A sensitive input's value (a PIN) is never stored: ``withheld`` names what such inputs had
collected, so a resumed call asks for it again. Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final


class StateUnreadable(ValueError):
    """The stored state is not one this engine understands (a newer engine's, or damaged)."""


@dataclass(frozen=True, slots=True)
class LiveState:
    """What the session knows at a node: kept in PostgreSQL while the call is in the flow."""

    node_id: str
    seq: int  # the session's step records so far
    language: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    withheld: tuple[str, ...] = ()
    generation: int = 0  # how many engines resumed the call so far

    def to_json(self) -> str:
        return json.dumps(
            {
                "node": self.node_id,
                "seq": self.seq,
                "language": self.language,
                "attributes": dict(self.attributes),
                "withheld": list(self.withheld),
                "generation": self.generation,
            },
            ensure_ascii=False,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> LiveState:
        """Raises ``StateUnreadable`` when the stored state is not one of ours."""
        try:
            data = json.loads(text)
            state = cls(
                node_id=str(data["node"]),
                seq=int(data["seq"]),
                language=str(data["language"]),
                attributes={str(k): str(v) for k, v in data["attributes"].items()},
                withheld=tuple(str(w) for w in data["withheld"]),
                generation=int(data["generation"]),
            )
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            raise StateUnreadable(f"stored state: {type(err).__name__}") from err
        if not state.node_id or state.seq < 0 or state.generation < 0:
            raise StateUnreadable("stored state: empty node or a negative count")
        return state


@dataclass(frozen=True, slots=True)
class Resumption:
    """Where and how a call taken over goes on in its flow."""

    node_id: str
    language: str
    attributes: Mapping[str, str]
    seq: int  # step records so far, as far as anyone knows
    withheld: tuple[str, ...]
    generation: int  # this engine's: one more than the last one's
    earlier: tuple[str, ...]  # prompt ids the last engine may have left playing


def plan_resumption(call_id: str, live: LiveState, steps_seq: int) -> Resumption:
    """Where a call whose session stored ``live`` resumes, given the highest step record
    stored (``steps_seq``: a step the state was not written again for, a retry at the same
    node, may be later): at the stored node, with what the flow knew there. Step records go
    on after the highest number used."""
    seq = max(live.seq, steps_seq)
    return Resumption(
        live.node_id,
        live.language,
        live.attributes,
        seq,
        live.withheld,
        live.generation + 1,
        earlier_prompts(call_id, live.generation, live.seq, seq),
    )


# Prompts one step of a flow queues at most (a retry's message and the node's own prompt),
# and the most step records an earlier engine's prompts are looked for over.
PROMPTS_PER_STEP: Final = 3
EARLIER_STEPS: Final = 12


def earlier_prompts(call_id: str, generation: int, from_seq: int, upto_seq: int) -> tuple[str, ...]:
    """The ids an earlier engine's prompts may have on the call (``menu``'s prompt ids: the
    call, the generation, the step record, the prompt's number in it), from the stored node
    on: still playing, they would delay the resumed flow's own. The last ``EARLIER_STEPS``
    step records at most."""
    gen = f"g{generation}-" if generation else ""
    first = max(from_seq, upto_seq - EARLIER_STEPS + 1)
    return tuple(
        f"{call_id}-{gen}{seq}-{k}"
        for seq in range(first, max(first, upto_seq) + 1)
        for k in range(PROMPTS_PER_STEP)
    )
