"""What a greeting call plays and how its end is recorded."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GreetingFlow:
    """Answer, play ``prompts`` as one prompt, hang up.

    ``completed_reason`` is the end reason stored when the caller stayed to the end: a hotline
    greeting ``completed``, the polite message for a number nobody owns ``unknown_number``.
    """

    name: str
    prompts: tuple[str, ...]
    language: str
    completed_reason: str
