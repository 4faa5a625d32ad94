"""A call's info log lines never carry a caller's full number (the whole engine, fake ARI)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog

from sambung.engine.logging import configure_logging
from sambung.ivr.flows import FlowTable
from sambung.ivr.model import InputNode
from tests.component.test_ivr_engine import input_flow
from tests.fakes.fake_ari import FakeAri
from tests.integration.harness import running_engine

NO_AMI = {"enabled": False}
NUMBER = "6281234567234"


@pytest.fixture
def info_logging() -> Iterator[None]:
    config = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure_logging("json", "info")
    yield
    structlog.configure(**config)
    for h in root.handlers[:]:
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)


async def test_given_calls_at_info_level_then_no_line_holds_the_full_number_or_digits(
    fake_ari: FakeAri, info_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = input_flow(
        "acct",
        "1505",
        InputNode("account", ("sound:beep",), "account", "bye", min_length=8, max_length=8),
    )
    async with running_engine(fake_ari.base_url, ami=NO_AMI) as run:
        run.engine.ivr.flows = FlowTable({"1505": flow})
        greeting = await fake_ari.inbound_call("1700000000.51", did="1500", caller_number=NUMBER)
        await run.wait_closed(call_id=greeting, timeout=5)
        ivr = await fake_ari.inbound_call("1700000000.52", did="1505", caller_number=NUMBER)
        await run.wait_open(call_id=ivr, timeout=5)
        for d in "55501234":
            await fake_ari.press_digit(ivr, d)
        await run.wait_closed(call_id=ivr, timeout=5)
    err = capsys.readouterr().err
    assert "call.offered" in err  # the line that used to carry the number is there
    assert NUMBER not in err
    assert "55501234" not in err
    assert "**********234" in err
