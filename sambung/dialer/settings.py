"""The shell's settings -> the dialer's frozen config (``dialer/model.py``).

Only ``dialer.config`` imports this module: it is the one place where the dialer reads the
shell's settings (``tests/unit/test_feature_boundaries.py`` holds the line). A disposition is
the ACD's value (the ACD checks queue dispositions too), so the ACD's converter makes those.
"""

from __future__ import annotations

from sambung.acd.settings import disposition_config
from sambung.dialer.model import BucketConfig, CampaignConfig, DialerConfig
from sambung.engine.config import CampaignSettings, DialerSettings


def dialer_config(settings: DialerSettings) -> DialerConfig:
    return DialerConfig(
        campaigns=tuple(campaign_config(c) for c in settings.campaigns),
        dnc_files=tuple(settings.dnc_files),
        tick_seconds=settings.tick_seconds,
    )


def campaign_config(c: CampaignSettings) -> CampaignConfig:
    return CampaignConfig(
        name=c.name,
        mode=c.mode,
        agents=tuple(c.agents),
        skill=c.skill,
        min_level=c.min_level,
        trunk=c.trunk,
        caller_id=c.caller_id,
        max_lines=c.max_lines,
        abandon_cap=c.abandon_cap,
        abandon_window_hours=c.abandon_window_hours,
        pacing_warmup_live=c.pacing_warmup_live,
        connect_limit_seconds=c.connect_limit_seconds,
        safe_harbour=tuple(c.safe_harbour),
        machine_message=tuple(c.machine_message),
        amd=c.amd,
        ring_seconds=c.ring_seconds,
        wrap_up_seconds=c.wrap_up_seconds,
        blend=c.blend,
        moh_class=c.moh_class,
        whisper=tuple(c.whisper),
        auto_answer=c.auto_answer,
        days=tuple(c.days),
        start=c.start,
        end=c.end,
        last_dial_margin_minutes=c.last_dial_margin_minutes,
        calendar=c.calendar,
        max_attempts_per_day=c.max_attempts_per_day,
        max_attempts_per_7_days=c.max_attempts_per_7_days,
        retry=tuple(sorted(c.retry.items())),
        default_zone=c.default_zone,
        default_language=c.default_language,
        buckets=tuple(BucketConfig(b.name, b.min_days, b.max_days) for b in c.buckets),
        dispositions=tuple(disposition_config(d) for d in c.dispositions),
        reminder_key=c.reminder_key,
        reminder_wait_seconds=c.reminder_wait_seconds,
        phone_types=tuple(c.phone_types),
        max_attempts=c.max_attempts,
    )
