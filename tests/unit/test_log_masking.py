"""Personal data in log lines: caller numbers and entered digits are masked unless at debug."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from sambung.engine.logging import configure_logging, mask_personal


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state: put it back for the tests after."""
    config = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.configure(**config)
    for h in root.handlers[:]:
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        pytest.param("6281234567234", "**********234", id="a phone number"),
        pytest.param("0811234", "****234", id="seven digits"),
        pytest.param("123456", "***456", id="six: the last three"),
        pytest.param("12345", "*****", id="shorter: all of it"),
        pytest.param("1", "*", id="one digit"),
        pytest.param("", "", id="empty"),
        pytest.param(6281234567234, "**********234", id="a number as int"),
    ],
)
def test_mask_personal_keeps_the_last_three_of_long_enough_values(
    value: str | int, masked: str
) -> None:
    assert mask_personal(value) == masked


def lines(err: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_given_info_level_then_numbers_and_digits_are_masked_by_key(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("json", "info")
    structlog.get_logger("t").info(
        "call.offered",
        caller_number="628111000234",
        caller="628111000234",
        Phone="0811222333",
        digits="98765432",
        input="12345678",
        did="1500",
        numbers=12,
    )
    err = capsys.readouterr().err
    assert "628111000234" not in err
    assert "98765432" not in err
    (line,) = lines(err)
    assert line["caller_number"] == line["caller"] == "*********234"
    assert line["Phone"] == "*******333"
    assert (line["digits"], line["input"]) == ("*****432", "*****678")
    # Our own numbers and counts are not personal data.
    assert (line["did"], line["numbers"]) == ("1500", 12)


def test_given_debug_level_then_values_are_logged_as_they_are(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("json", "debug")
    structlog.get_logger("t").info("call.offered", caller_number="628111000234")
    (line,) = lines(capsys.readouterr().err)
    assert line["caller_number"] == "628111000234"
