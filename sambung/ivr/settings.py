"""The shell's settings -> the IVR's frozen config (``IvrConfig`` in ``ivr/model.py``).

Only ``ivr.config`` imports this module: it is the one place where the IVR reads the shell's
settings (``tests/unit/test_feature_boundaries.py`` holds the line).
"""

from __future__ import annotations

from sambung.engine.calendar_config import unknown_days_open
from sambung.engine.config import HotlineSettings, Settings
from sambung.ivr.model import HotlineConfig, IvrConfig


def ivr_config(settings: Settings) -> IvrConfig:
    s = settings
    return IvrConfig(
        flows=tuple(s.ivr.flows),
        max_menu_depth=s.ivr.max_menu_depth,
        # The [acd] queues only: a campaign's queue (dialer-<name>) is the dialer's, not a
        # place a caller can be transferred to.
        transfer_queues=(*s.ivr.queues, *(q.name for q in s.acd.queues)),
        sounds_root=s.ivr.sounds_root,
        digits_retention_days=s.ivr.digits_retention_days,
        hotlines=tuple(hotline_config(h) for h in s.hotlines),
        unknown_number_prompts=tuple(s.calls.unknown_number_prompts),
        max_silent_seconds=s.calls.max_silent_seconds,
        unknown_days_open=tuple(unknown_days_open(s.calendars)),
        adopt_within_seconds=s.acd.adopt_within_seconds,
        source=str(s.source or "(settings)"),
    )


def hotline_config(h: HotlineSettings) -> HotlineConfig:
    return HotlineConfig(
        did=h.did, name=h.name, language=h.language, greeting=tuple(h.greeting), queue=h.queue
    )
