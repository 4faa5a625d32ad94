"""Readers of the plain values a flow file is made of: text, numbers, true/false, DTMF keys,
references to other nodes, attribute names and prompts (media).

Each is a ``ValueReader`` (``ivr.loader_reader``): it checks one value and returns it
converted, or records a problem and returns None. The factories (``string``, ``number``...)
make one for a pattern or a range.
"""

from __future__ import annotations

import re
from typing import Any

from sambung.ivr.loader_reader import At, Reader, ValueReader, did_you_mean, show
from sambung.ivr.loader_yaml import YamlSeq

__all__ = [
    "ATTR",
    "DTMF_KEYS",
    "MEDIA_SCHEMES",
    "SOUND_EXTENSIONS",
    "attribute",
    "boolean",
    "dtmf",
    "integer",
    "key_or_none",
    "number",
    "prompt",
    "prompts",
    "string",
    "target",
]

# The formats Asterisk plays a sound:<name> from (format modules loaded in the sandbox).
SOUND_EXTENSIONS = ("wav", "gsm", "ulaw", "alaw", "sln", "g722", "sln16", "wav16")
MEDIA_SCHEMES = ("sound", "digits", "number", "characters", "tone", "recording")
DTMF_KEYS = "0123456789*#ABCD"

# A call attribute's name (also a lookup URL's {field}).
ATTR = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_SOUND_NAME = re.compile(r"/?[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*")


def string(
    what: str = "a string", pattern: re.Pattern[str] | None = None, *, allow_int: bool = False
) -> ValueReader[str]:
    def read(r: Reader, v: Any, at: At) -> str | None:
        if allow_int and isinstance(v, int) and not isinstance(v, bool):
            v = str(v)
        if not isinstance(v, str):
            r.err(at, f"expected {what}, got {show(v)}")
            return None
        if pattern is not None and not pattern.fullmatch(v):
            r.err(at, f"expected {what}, got {v!r}")
            return None
        return v

    return read


def number(lo: float, hi: float, what: str = "seconds") -> ValueReader[float]:
    """A number in (lo, hi]."""

    def read(r: Reader, v: Any, at: At) -> float | None:
        if isinstance(v, bool) or not isinstance(v, int | float):
            r.err(at, f"expected a number of {what}, got {show(v)}")
            return None
        if not lo < v <= hi:
            r.err(at, f"expected more than {lo:g} and at most {hi:g} {what}, got {v:g}")
            return None
        return float(v)

    return read


def integer(lo: int, hi: int, what: str) -> ValueReader[int]:
    """A whole number in [lo, hi]."""

    def read(r: Reader, v: Any, at: At) -> int | None:
        if isinstance(v, bool) or not isinstance(v, int):
            r.err(at, f"expected a whole number of {what}, got {show(v)}")
            return None
        if not lo <= v <= hi:
            r.err(at, f"expected {lo} to {hi} {what}, got {v}")
            return None
        return v

    return read


def boolean(r: Reader, v: Any, at: At) -> bool | None:
    if not isinstance(v, bool):
        r.err(at, f"expected true or false, got {show(v)}")
        return None
    return v


def attribute(what: str = "an attribute name (letters, digits, _)") -> ValueReader[str]:
    return string(what, ATTR)


def dtmf(r: Reader, v: Any, at: At) -> str | None:
    """One DTMF key; YAML's unquoted 1 is the number 1, accepted as the key "1"."""
    if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 9:
        return str(v)
    if isinstance(v, str) and len(v) == 1 and v in DTMF_KEYS:
        return v
    if v is None:
        r.err(
            at, 'expected a single DTMF key, got nothing: quote "#" (unquoted, # starts a comment)'
        )
    else:
        r.err(at, f"expected a single DTMF key (0-9, *, #, A-D), got {show(v)}")
    return None


def key_or_none(r: Reader, v: Any, at: At) -> str | None:
    """A DTMF key, or false for none (returned as "")."""
    if v is False:
        return ""
    return dtmf(r, v, at)


def target(r: Reader, v: Any, at: At) -> str | None:
    """A node id: checked against the flow's nodes once all are read; an edge of the graph."""
    if not isinstance(v, str) or not v:
        r.err(at, f"expected a node id, got {show(v)}")
        return None
    r.refs.append((at, v))
    if at.node:
        r.edges.setdefault(at.node, []).append(v)
    return v


def prompts(nonempty: bool) -> ValueReader[tuple[str, ...]]:
    """One prompt or a list of them, as media (``prompt``)."""

    def read(r: Reader, v: Any, at: At) -> tuple[str, ...] | None:
        if isinstance(v, str):
            items: list[tuple[Any, At]] = [(v, at)]
        elif isinstance(v, YamlSeq):
            items = [(x, at.child(i, v.lines[i])) for i, x in enumerate(v)]
        else:
            r.err(at, f"expected a list of prompt names, got {show(v)}")
            return None
        if nonempty and not items:
            r.err(at, "expected at least one prompt")
            return None
        out: list[str] = []
        for x, x_at in items:
            media = prompt(r, x, x_at)
            if media is None:
                return None
            out.append(media)
        return tuple(out)

    return read


def prompt(r: Reader, v: Any, at: At) -> str | None:
    """A prompt as media: a bare name is sound:<name>; sound: names are kept for the check
    against the sound folders (``ivr.loader_checks``)."""
    if not isinstance(v, str) or not v:
        r.err(at, f"expected a prompt name (sambung/main-menu), got {show(v)}")
        return None
    scheme, sep, rest = v.partition(":")
    if not sep:
        scheme, rest = "sound", v
    elif scheme not in MEDIA_SCHEMES:
        hint = did_you_mean(scheme, MEDIA_SCHEMES)
        r.err(at, f"unknown media scheme {scheme!r}{hint}: use {', '.join(MEDIA_SCHEMES)}")
        return None
    if scheme != "sound":
        if not rest or any(c.isspace() for c in rest):
            r.err(at, f"expected {scheme}:<value> without spaces, got {v!r}")
            return None
        return v
    if not _SOUND_NAME.fullmatch(rest) or ".." in rest.split("/"):
        r.err(at, f"expected a sound name such as sambung/main-menu, got {v!r}")
        return None
    if rest.endswith(tuple(f".{ext}" for ext in SOUND_EXTENSIONS)):
        r.err(at, f"expected the sound name without its extension, got {v!r}")
        return None
    if not rest.startswith("/"):
        r.prompt_uses.append((rest, at))
    return f"sound:{rest}"
