"""The IVR's domain errors.

A flow file that fails validation raises :class:`FlowError` holding every problem found (not
only the first), each naming the file, the node and the key, so one run of ``sambung
check-config`` shows all there is to fix.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sambung.engine.errors import SambungError


@dataclass(frozen=True, slots=True)
class FlowProblem:
    """One thing wrong (or worth a warning) in a flow file.

    ``node`` is the node id, or "" for the flow's own keys (``dids``, ``calendars.office...``);
    ``key`` is the path inside the node (``options.2``, ``retry.on_failure``,
    ``branches[0].when.business_hours``), or "" when the problem is the node as a whole
    (unreachable, a loop); ``expected`` says what is wrong and what was expected; ``line`` is
    the line in ``file`` where it is, when known.
    """

    file: str
    node: str
    key: str
    expected: str
    line: int | None = None

    def __str__(self) -> str:
        parts = [f"{self.file}:{self.line}" if self.line else self.file]
        if self.node:
            parts.append(f"node {self.node!r}")
        if self.key:
            parts.append(self.key)
        parts.append(self.expected)
        return ": ".join(parts)


class IvrError(SambungError):
    """Base of the IVR's errors."""

    error_id = "ivr.error"
    http_status = 500
    title = "IVR error"


class FlowError(IvrError):
    """One or more flow files are unreadable or invalid; nothing of them was loaded.

    ``file``, ``node``, ``key`` and ``expected`` are the first problem's; ``problems`` holds
    them all, and ``str()`` shows them all, one per line.
    """

    error_id = "ivr.flow_invalid"
    # A refused reload (POST /api/v1/flows/reload): the request was fine, the files are not.
    http_status = 422
    title = "Invalid flow"

    def __init__(self, problems: Iterable[FlowProblem]) -> None:
        self.problems: tuple[FlowProblem, ...] = tuple(problems)
        if not self.problems:
            raise ValueError("FlowError needs at least one problem")
        first = self.problems[0]
        lines = [str(p) for p in self.problems]
        detail = lines[0] if len(lines) == 1 else f"{len(lines)} problems:\n" + "\n".join(lines)
        super().__init__(
            detail,
            file=first.file,
            node=first.node,
            key=first.key,
            expected=first.expected,
            problems=len(lines),
        )
        self.file = first.file
        self.node = first.node
        self.key = first.key
        self.expected = first.expected

    @classmethod
    def single(
        cls, file: str, node: str, key: str, expected: str, line: int | None = None
    ) -> FlowError:
        return cls([FlowProblem(file, node, key, expected, line)])


class LookupUrlRefused(IvrError):
    """A lookup's URL cannot be built safely from the call's attributes; the lookup fails to
    its ``on_failure`` without a request.

    ``reason`` is a stable id: ``missing`` (no such attribute), ``dot_segment`` (caller data
    makes a path segment that is, or decodes to, ``.`` or ``..``), ``empty_segment`` (caller data
    makes an empty path segment), ``template`` (the template does not parse). ``attr`` names the
    attribute. The value is caller data and is never part of the error: it is logged and stored.
    """

    error_id = "ivr.lookup_url_refused"
    title = "Lookup URL refused"

    def __init__(self, reason: str, attr: str) -> None:
        super().__init__(f"lookup URL refused: {reason} ({attr or 'template'})")
        self.reason = reason
        self.attr = attr

    @property
    def choice(self) -> str:
        """What the step record says: ``<reason>:<attr>``."""
        return f"{self.reason}:{self.attr}"
