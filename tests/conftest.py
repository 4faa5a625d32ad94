"""Suite-wide fixtures.

``fail_on_loop_exceptions``: an exception that nobody awaited (a crashed task, an unretrieved
task exception, a callback that raised) is reported by asyncio through the loop's exception
handler and would otherwise only be printed. Every test fails if one was reported.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.fake_ari import fake_ari

__all__ = ["fail_on_loop_exceptions", "fake_ari"]


@pytest.fixture(autouse=True)
def fail_on_loop_exceptions(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    contexts: list[dict[str, Any]] = []
    original = asyncio.BaseEventLoop.call_exception_handler

    def collect(self: asyncio.BaseEventLoop, context: dict[str, Any]) -> None:
        contexts.append(context)
        original(self, context)

    # Patched on the class rather than set per loop: it also catches what happens on loops the
    # test did not make, and "Task exception was never retrieved" reported after the loop
    # closed (from Task.__del__, hence the gc.collect below).
    monkeypatch.setattr(asyncio.BaseEventLoop, "call_exception_handler", collect)
    yield contexts
    gc.collect()
    if contexts:
        lines = [f"{c.get('message', '')}: {c.get('exception')!r}" for c in contexts]
        pytest.fail("exception(s) left in the event loop:\n" + "\n".join(lines))
