"""The shell's settings -> the recordings feature's frozen config (``recordings/model.py``).

Only ``recordings.config`` imports this module: it is the one place where the feature reads the
shell's settings (``tests/unit/test_feature_boundaries.py`` holds the line).
"""

from __future__ import annotations

from sambung.engine.config import RecordingScopeSettings, Settings
from sambung.recordings.model import Policy, RecordingsConfig, Rules, ScopeRules


def recordings_config(settings: Settings) -> RecordingsConfig:
    r = settings.recordings
    return RecordingsConfig(
        rules=rules_from(settings),
        store_dir=r.store_dir,
        retention_interval_seconds=r.retention_interval_seconds,
        supervisor_phones=dict(r.supervisor_phones),
        monitor_ring_seconds=r.monitor_ring_seconds,
        journal=settings.engine.spool_dir / f"recordings-{settings.engine.instance_id}.jsonl",
        retry_max_seconds=settings.database.retry_max_seconds,
    )


def rules_from(settings: Settings) -> Rules:
    r = settings.recordings
    default = ScopeRules(Policy(r.policy), r.retention_days, tuple(r.announcement))

    def scope(o: RecordingScopeSettings) -> ScopeRules:
        return ScopeRules(
            Policy(o.policy) if o.policy is not None else default.policy,
            o.retention_days if o.retention_days is not None else default.retention_days,
            tuple(o.announcement) if o.announcement is not None else default.announcement,
        )

    return Rules(
        default,
        {name: scope(o) for name, o in r.queues.items()},
        {name: scope(o) for name, o in r.campaigns.items()},
    )
