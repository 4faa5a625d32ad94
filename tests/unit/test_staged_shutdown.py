"""sambung/engine/lifecycle.py: the order of a graceful stop's stages."""

from __future__ import annotations

from typing import Any

import pytest

from sambung.engine.lifecycle import staged_shutdown


class Steps:
    """Stands in for every part a stop touches, writing down what was done in which order."""

    def __init__(self) -> None:
        self.done: list[str] = []
        self.accepting = True
        self.tasks = self
        self.service = self
        self.pending = 0

    def __len__(self) -> int:
        return 0

    async def stop(self) -> None:  # the dialer's service
        self.done.append("stop_dialing")

    async def drain(self, timeout: float) -> bool:  # the dispatcher, and the fact writer
        self.done.append("drain")
        return True

    async def cancel_all(self) -> None:
        self.done.append("cancel")

    def hand_over(self) -> int:
        self.done.append("hand_over")
        return 0

    async def let_go(self) -> None:
        self.done.append("let_go")


async def stop(steps: Steps, hand_over: bool) -> list[str]:
    parts: Any = steps
    await staged_shutdown(
        dialer=parts,
        dispatcher=parts,
        drain_timeout=15.0,
        recordings=None,
        adapters=[],
        facts=parts,
        services=parts,
        hand_over=steps.hand_over if hand_over else None,
        let_go=steps.let_go,
    )
    return steps.done


@pytest.mark.parametrize(
    ("hand_over", "order"),
    [
        # Talks handed over have no driver from that moment: Asterisk's talk guard must not
        # wait for the drain (up to its whole timeout) to take them.
        (True, ["stop_dialing", "hand_over", "let_go", "drain"]),
        # Drained calls are driven to their end by this engine: only then does it let go.
        (False, ["stop_dialing", "drain", "let_go"]),
    ],
)
async def test_the_engine_lets_its_calls_go_as_soon_as_nobody_drives_them(
    hand_over: bool, order: list[str]
) -> None:
    done = await stop(Steps(), hand_over)
    # The first drain is the dispatcher's; the fact writer's and the services' come after.
    assert done[: len(order)] == order
    assert done.count("let_go") == 1
