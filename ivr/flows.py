"""The engine's table of flows: which flow answers which DID, loaded and swapped as a whole."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.calendars import HolidayCalendar
from ivr.model import Flow
from ivr.sounds import language_dirs

# The languages the product speaks; a flow may use any of them.
LANGUAGES = ("id", "en")


@dataclass(frozen=True)
class FlowTable:
    by_did: Mapping[str, Flow] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def describe(self) -> list[dict[str, object]]:
        seen: dict[str, Flow] = {}
        for f in self.by_did.values():
            seen.setdefault(f.name, f)
        return [
            {"flow": f.name, "version": f.version[:12], "dids": list(f.dids), "file": f.source}
            for f in seen.values()
        ]


def load_flow_table(
    paths: Sequence[Path],
    *,
    queues: Sequence[str],
    sounds_root: Path | None,
    max_menu_depth: int,
    reserved_dids: Mapping[str, str],
    calendars: Mapping[str, HolidayCalendar] | None = None,
    unknown_days_open: Sequence[str] = (),
) -> FlowTable:
    """Load every flow file; raise FlowError naming file, node and key on any problem.

    ``reserved_dids`` maps DIDs already taken elsewhere (simple hotlines) to who took them.
    """
    if not paths:
        return FlowTable()
    from ivr.errors import FlowError
    from ivr.loader import load_flows

    sound_dirs = language_dirs(sounds_root, LANGUAGES) if sounds_root is not None else None
    flowset = load_flows(
        list(paths),
        known_queues=set(queues),
        sound_dirs=sound_dirs,
        max_menu_depth=max_menu_depth,
        calendars=calendars,
        unknown_days_open=unknown_days_open,
    )
    by_did = dict(flowset.by_did)
    for did, flow in by_did.items():
        if did in reserved_dids:
            raise FlowError.single(
                flow.source, "", "dids", f"DID {did} is already used by {reserved_dids[did]}"
            )
    return FlowTable(by_did, tuple(flowset.warnings))
