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
