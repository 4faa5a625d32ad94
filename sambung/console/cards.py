"""Each agent's call card: what their screen shows about the call in hand (pure bookkeeping).

Fed with the agents' events (``acd/events.py``). A card appears when a call is offered, turns
"connected" when the agent answers and "ended" when the talk ends, and stays on screen through
wrap-up until the agent saves a disposition or the next call is offered: the form must not
vanish while the agent is typing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sambung.acd.events import AgentConnected, AgentEvent, AgentOffered, CallEnded, OfferEnded

# IVR attributes that describe the call rather than what the caller entered.
CALL_FIELDS = frozenset({"caller_number", "did", "language", "caller_name"})
LOOKUP_PREFIX = "crm_"
DEBTOR_FIELDS = (
    "campaign",
    "account_id",
    "debtor_name",
    "amount_due",
    "days_past_due",
    "bucket",
    "due_date",
    "attempts",
    "zone",
)


@dataclass(frozen=True)
class Card:
    call: dict[str, Any]
    phase: str  # offered | connected | ended
    at: datetime
    ended_at: datetime | None = None
    wrap_up_seconds: float | None = None
    saved_code: str | None = None

    @property
    def call_id(self) -> str:
        return str(self.call.get("call_id", ""))

    @property
    def attributes(self) -> dict[str, str]:
        attrs = self.call.get("attributes") or {}
        return {str(k): str(v) for k, v in attrs.items()}

    @property
    def is_dialer(self) -> bool:
        return "campaign" in self.attributes and "amount_due" in self.attributes

    @property
    def account(self) -> str | None:
        a = self.attributes
        return a.get("account_id") or a.get("account") or a.get(LOOKUP_PREFIX + "account")

    def ivr_inputs(self) -> dict[str, str]:
        return {
            k: v
            for k, v in self.attributes.items()
            if k not in CALL_FIELDS and not k.startswith(LOOKUP_PREFIX) and not self.is_dialer
        }

    def lookup(self) -> dict[str, str]:
        n = len(LOOKUP_PREFIX)
        return {k[n:]: v for k, v in self.attributes.items() if k.startswith(LOOKUP_PREFIX)}

    def debtor(self) -> dict[str, str]:
        a = self.attributes
        return {k: a[k] for k in DEBTOR_FIELDS if k in a}

    def extra(self) -> dict[str, str]:
        return {k[6:]: v for k, v in self.attributes.items() if k.startswith("extra.")}


@dataclass
class CardBook:
    cards: dict[str, Card] = field(default_factory=dict)

    def get(self, agent_id: str) -> Card | None:
        return self.cards.get(agent_id)

    def hear(self, event: AgentEvent, now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        agent = event.agent_id
        card = self.cards.get(agent)
        match event:
            case AgentOffered(call=call):
                self.cards[agent] = Card(call.to_wire(), "offered", now)
            case AgentConnected(call=call):
                self.cards[agent] = Card(call.to_wire(), "connected", now)
            case OfferEnded(call_id=call_id, result=result) if (
                card is not None
                and call_id == card.call_id
                and card.phase == "offered"
                and result != "answered"
            ):
                # Missed or taken by someone else: nothing to record for this agent.
                del self.cards[agent]
            case CallEnded(call_id=call_id, wrap_up_seconds=wrap) if (
                card is not None and call_id == card.call_id
            ):
                self.cards[agent] = replace(
                    card,
                    phase="ended",
                    ended_at=now,
                    wrap_up_seconds=None if wrap is None else float(wrap),
                )
            case _:
                pass

    def saved(self, agent_id: str, call_id: str, code: str) -> None:
        card = self.cards.get(agent_id)
        if card is not None and card.call_id == call_id:
            self.cards[agent_id] = replace(card, saved_code=code)
