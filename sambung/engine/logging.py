"""structlog set-up: JSON lines in production, key=value on a terminal.

Every line about a call carries ``call_id`` (bound by the call task). A redaction step runs last
before rendering so a secret passed by mistake never reaches the output.

Personal data (a caller's number, digits a caller entered) is masked by key name, once, here:
log it under one of ``PERSONAL_KEYS`` (``caller_number`` for a number, ``digits`` for what was
keyed) and only the last three characters show (``*********234``), unless the level is debug,
where whoever reproduces a call needs the values. Never put such a value in an event's text or
under another key.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog

_SECRET_KEYS = ("password", "secret", "token", "authorization", "api_key")
# Exact key names (any case) whose values are personal data. Counts (``numbers=12``) and our
# own numbers (``did``) are not among them.
PERSONAL_KEYS = frozenset(
    {
        "caller_number",
        "caller",
        "caller_id",
        "callerid",
        "number",
        "phone",
        "phone_number",
        "msisdn",
        "digits",
        "input",
    }
)
# Fewer characters than this are masked entirely: three of a short value give most of it away.
_SHOW_TAIL_FROM = 6


def mask_personal(value: object) -> str:
    """``6281234567234`` -> ``**********234``; values under 6 characters wholly masked."""
    text = str(value)
    if len(text) < _SHOW_TAIL_FROM:
        return "*" * len(text)
    return "*" * (len(text) - 3) + text[-3:]


def _redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if any(s in key.lower() for s in _SECRET_KEYS):
            event_dict[key] = "***"
    return event_dict


def _mask(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event_dict.items():
        if value is not None and key.lower() in PERSONAL_KEYS:
            event_dict[key] = mask_personal(value)
    return event_dict


def configure_logging(fmt: Literal["console", "json"] = "console", level: str = "info") -> None:
    lvl = getattr(logging, level.upper())
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            _redact,
            *(() if lvl <= logging.DEBUG else (_mask,)),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        # Resolve sys.stderr at each use rather than binding the stream now: a test harness or
        # a daemoniser may swap it later, and a closed stream must never break call handling.
        logger_factory=lambda *_: structlog.PrintLogger(sys.stderr),
        cache_logger_on_first_use=False,
    )
    # Libraries that use stdlib logging (aiohttp access log, asyncpg) go to stderr too.
    logging.basicConfig(level=max(lvl, logging.WARNING), stream=sys.stderr, format="%(message)s")
