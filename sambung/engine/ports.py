"""Ports: what the engine and its features need from the outside, as protocols.

``asterisk/`` implements them; features depend only on these. Methods raise
``engine.errors.CallGone`` when the call's channel no longer exists (the caller hung up first),
``TelephonyUnavailable`` when Asterisk cannot be reached, and another ``TelephonyError``
subclass for anything else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Telephony(Protocol):
    async def answer(self, call_id: str) -> None: ...

    async def play(
        self, call_id: str, prompt_id: str, media: Sequence[str], language: str | None = None
    ) -> None:
        """Queue ``media`` (``sound:name``, ``digits:123``...) on the call as one prompt.

        Completion arrives as ``PromptFinished(prompt_id)``; a hang-up flushes queued prompts
        without one, so call tasks must treat ``CallEnded`` as the end of every prompt.
        """
        ...

    async def stop_prompt(self, prompt_id: str) -> None: ...

    async def prompt_active(self, prompt_id: str) -> bool:
        """Whether the prompt is still queued or playing (used after missed events)."""
        ...

    async def hangup(self, call_id: str, reason: str = "normal") -> None:
        """Hang up; idempotent (a call already gone is not an error)."""
        ...


class IvrTelephony(Telephony, Protocol):
    """What the IVR needs on top of call control: Asterisk's bound on a caller nobody drives."""

    async def set_safeguard(self, call_id: str, seconds: float) -> None:
        """Have Asterisk release the call politely by itself (the engine-down message, cause
        34) unless this is called again within ``seconds``; 0 stops it."""
        ...


class QueueTelephony(Telephony, Protocol):
    """What the ACD needs on top of call control: bridges, legs to phones, device states."""

    async def ensure_holding_bridge(self, bridge_id: str, moh_class: str) -> None: ...

    async def create_mixing_bridge(self, bridge_id: str) -> None: ...

    async def join_bridge(self, bridge_id: str, channel_ids: Sequence[str]) -> None:
        """Move channels into a bridge (out of any other); entry is confirmed by BridgeJoined."""
        ...

    async def destroy_bridge(self, bridge_id: str) -> None: ...

    async def dial(
        self,
        owner: str,
        leg_id: str,
        endpoint: str,
        *,
        caller_id: str | None,
        timeout: int,
        originator: str | None = None,
        variables: dict[str, str] | None = None,
    ) -> None:
        """Ring ``endpoint`` as a leg owned by call ``owner`` (its events reach that call).

        Raises ``EndpointUnavailable`` when the phone cannot be rung at all.
        """
        ...

    async def hangup_leg(self, leg_id: str, reason: str = "normal") -> None: ...

    async def device_state(self, device: str) -> str: ...

    async def play_on(
        self, channel_id: str, prompt_id: str, media: Sequence[str], language: str | None = None
    ) -> None: ...

    async def record_message(self, call_id: str, name: str, max_seconds: int) -> None:
        """Record the caller (after a beep, until '#' or ``max_seconds``) as ``name``."""
        ...

    async def mark_place(self, call_id: str, place: str) -> None:
        """Write the caller's place in the queues on its channel ("" clears it): what an
        engine started later reads back to take the waiting call over."""
        ...

    async def set_safeguard(self, call_id: str, seconds: float) -> None:
        """Have Asterisk release the call politely by itself (the engine-down message, cause
        34) unless this is called again within ``seconds``; 0 stops it."""
        ...

    async def guard_talk(self, channel_id: str, partner_id: str) -> None:
        """Have Asterisk end ``partner_id`` if ``channel_id`` hangs up while no engine runs
        (``asterisk/talk_guard.py``)."""
        ...

    async def set_engine_until(self, epoch: int) -> None:
        """Tell Asterisk until when (epoch seconds) an engine drives talks; 0: none does."""
        ...
