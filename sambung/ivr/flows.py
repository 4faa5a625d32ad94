"""The engine's table of flows: which flow answers which DID, loaded and swapped as a whole.

``FlowTable`` is what ``ivr.loader.load_flows`` returns and what the engine holds: one table
per load, replaced whole on a reload, so a call never sees half of one. ``load_flow_table``
is the engine's way in: the settings' words (queues, sounds root, the DIDs that simple
hotlines already took) turned into the loader's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sambung.engine.calendars import HolidayCalendar
from sambung.ivr.errors import FlowError, FlowProblem
from sambung.ivr.model import Flow
from sambung.ivr.sounds import language_dirs

__all__ = ["LANGUAGES", "FlowTable", "load_flow_table"]

# The languages the product speaks; a flow may use any of them.
LANGUAGES = ("id", "en")


@dataclass(frozen=True)
class FlowTable:
    """Flows by DID (a DID belongs to one flow), and what the engine should warn about once.

    ``warning_details`` are the warnings with file, node and key; ``warnings`` the same as
    text, for the log. A table made by hand (``FlowTable({did: flow})``) has none.
    """

    by_did: Mapping[str, Flow] = field(default_factory=dict)
    warning_details: tuple[FlowProblem, ...] = ()

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(str(w) for w in self.warning_details)

    @property
    def flows(self) -> tuple[Flow, ...]:
        """The distinct flows, in the order of their first DID (the order of their files)."""
        seen: dict[str, Flow] = {}
        for f in self.by_did.values():
            seen.setdefault(f.name, f)
        return tuple(seen.values())

    def describe(self) -> list[dict[str, object]]:
        return [
            {"flow": f.name, "version": f.version[:12], "dids": list(f.dids), "file": f.source}
            for f in self.flows
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
    # Imported here: the loader imports this module for FlowTable.
    from sambung.ivr.loader import load_flows

    sound_dirs = language_dirs(sounds_root, LANGUAGES) if sounds_root is not None else None
    table = load_flows(
        list(paths),
        known_queues=set(queues),
        sound_dirs=sound_dirs,
        max_menu_depth=max_menu_depth,
        calendars=calendars,
        unknown_days_open=unknown_days_open,
    )
    for did, flow in table.by_did.items():
        if did in reserved_dids:
            raise FlowError.single(
                flow.source, "", "dids", f"DID {did} is already used by {reserved_dids[did]}"
            )
    return table
