"""A lookup node's URL from its template and the call's attributes. Pure: no I/O.

Attributes are caller data (the number the carrier sent, digits the caller pressed, what a
CRM answered), so each value is percent-encoded as a single path segment: every character but
the unreserved ones (``A-Z a-z 0-9 - . _ ~``) is encoded, ``/`` and ``%`` too. That alone is not
enough: ``.`` and ``..`` are unreserved, and an HTTP client normalises the path before sending
it (yarl does), so ``by-phone/{caller_number}/detail`` with the number ``..`` would ask for
``/accounts/detail``. A path segment that holds caller data is therefore refused when it is
empty, or when it is ``.`` or ``..``, also after percent-decoding it (again and again: some
servers decode twice) and also around slashes and backslashes it would decode to (some servers
decode ``%2F`` before routing). The query and fragment are not paths: only encoded there.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from urllib.parse import quote, unquote

from sambung.ivr.errors import LookupUrlRefused

__all__ = ["render_url"]

_SEPARATORS = re.compile(r"[/\\]")
_DOT_SEGMENTS = (".", "..")


def render_url(template: str, attrs: Mapping[str, str]) -> str:
    """``template`` with each ``{attr}`` replaced by the encoded attribute.

    Raises ``LookupUrlRefused`` (reason ``missing``, ``dot_segment``, ``empty_segment`` or
    ``template``) instead of building a URL that would leave the path the template means.
    """
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as err:
        raise LookupUrlRefused("template", "") from err
    # (text, the attribute it came from, or None for the template's own text)
    pieces: list[tuple[str, str | None]] = []
    for literal, name, _spec, _conversion in fields:
        if literal:
            pieces.append((literal, None))
        if name is None:
            continue
        value = attrs.get(name)
        if value is None:
            raise LookupUrlRefused("missing", name)
        pieces.append((quote(value, safe=""), name))
    _check_path(pieces)
    return "".join(text for text, _ in pieces)


def _check_path(pieces: list[tuple[str, str | None]]) -> None:
    """Refuse a path segment holding caller data that is empty or a dot segment.

    Encoded values contain no ``/ ? #``: segments and the end of the path come from the
    template's own text only, so walking that text finds them.
    """
    phase = "scheme"  # then "authority" after "://", "path" from its first "/", then "query"
    tail = ""
    segment: list[tuple[str, str | None]] = []

    def close() -> None:
        attrs = [a for _, a in segment if a is not None]
        if attrs:
            reason = _refusal("".join(text for text, _ in segment))
            if reason is not None:
                raise LookupUrlRefused(reason, attrs[0])
        segment.clear()

    for text, attr in pieces:
        if attr is not None:
            # Only the path is checked; the loader refuses fields in the scheme and host, and
            # an encoded value cannot leave the query.
            if phase == "path":
                segment.append((text, attr))
            continue
        for ch in text:
            if phase == "scheme":
                tail = (tail + ch)[-3:]
                if tail == "://":
                    phase = "authority"
            elif phase == "authority":
                if ch == "/":
                    phase = "path"
                elif ch in "?#":
                    phase = "query"
            elif phase == "path":
                if ch == "/":
                    close()
                elif ch in "?#":
                    close()
                    phase = "query"
                else:
                    segment.append((ch, None))
    if phase == "path":
        close()


def _refusal(segment: str) -> str | None:
    """Why this path segment must not be sent, or None."""
    if not segment:
        return "empty_segment"
    seen = segment
    while True:
        if any(part in _DOT_SEGMENTS for part in _SEPARATORS.split(seen)):
            return "dot_segment"
        decoded = unquote(seen)
        if decoded == seen:
            return None
        seen = decoded  # shorter each time: the loop ends
