"""The shell's settings -> the ACD's frozen config (``acd/model.py``).

Only the features' set-up paths import this module (``acd.config``, and the dialer's converter
for its campaigns' dispositions; tests too, to turn settings into a config): it is the one place
where the ACD reads the shell's settings, so the settings can change shape without the ACD's code
noticing (``tests/unit/test_feature_boundaries.py`` holds the line).
"""

from __future__ import annotations

from sambung.acd.model import (
    AcdConfig,
    AgentConfig,
    CallbackRuleConfig,
    DispositionConfig,
    OverflowConfig,
    QueueConfig,
    RelaxStepConfig,
    SkillNeedConfig,
)
from sambung.engine.config import (
    AcdSettings,
    AgentSettings,
    CallbackRuleSettings,
    CallSettings,
    DispositionSettings,
    QueueSettings,
    SkillNeedSettings,
)


def acd_config(settings: AcdSettings, calls: CallSettings) -> AcdConfig:
    return AcdConfig(
        short_abandon_seconds=settings.short_abandon_seconds,
        service_level_window_seconds=settings.service_level_window_seconds,
        hold_reminder_seconds=settings.hold_reminder_seconds,
        callback_trunk=settings.callback_trunk,
        callbacks=callback_rule_config(settings.callbacks),
        queues=tuple(queue_config(q) for q in settings.queues),
        agents=tuple(agent_config(a) for a in settings.agents),
        max_silent_seconds=calls.max_silent_seconds,
        adopt_within_seconds=settings.adopt_within_seconds,
    )


def _needs(needs: list[SkillNeedSettings]) -> tuple[SkillNeedConfig, ...]:
    return tuple(SkillNeedConfig(n.skill, n.min_level) for n in needs)


def disposition_config(d: DispositionSettings) -> DispositionConfig:
    return DispositionConfig(
        code=d.code,
        label=d.label,
        needs=tuple(d.needs),
        right_party=d.right_party,
        promise=d.promise,
        paid=d.paid,
        then=d.then,
    )


def queue_config(q: QueueSettings) -> QueueConfig:
    return QueueConfig(
        name=q.name,
        language=q.language,
        greeting=tuple(q.greeting),
        moh_class=q.moh_class,
        announce_every_seconds=q.announce_every_seconds,
        announce_position=q.announce_position,
        announce_wait=q.announce_wait,
        priority=q.priority,
        aging_seconds=q.aging_seconds,
        max_wait_seconds=q.max_wait_seconds,
        max_length=q.max_length,
        overflow=OverflowConfig(
            action=q.overflow.action,
            target=q.overflow.target,
            prompts=tuple(q.overflow.prompts),
        ),
        service_level_seconds=q.service_level_seconds,
        wrap_up_seconds=q.wrap_up_seconds,
        ring_timeout_seconds=q.ring_timeout_seconds,
        strategy=q.strategy,
        needs=_needs(q.needs),
        relax=tuple(RelaxStepConfig(r.after_seconds, _needs(r.needs)) for r in q.relax),
        callback_key=q.callback_key,
        whisper=tuple(q.whisper),
        default_handle_seconds=q.default_handle_seconds,
        auto_answer=q.auto_answer,
        dispositions=tuple(disposition_config(d) for d in q.dispositions),
    )


def agent_config(a: AgentSettings) -> AgentConfig:
    return AgentConfig(
        id=a.id,
        name=a.name,
        endpoint=a.endpoint,
        pin=a.pin.get_secret_value(),
        skills=tuple(sorted(a.skills.items())),
        queues=tuple(a.queues),
        team=a.team,
    )


def callback_rule_config(c: CallbackRuleSettings) -> CallbackRuleConfig:
    return CallbackRuleConfig(
        phone_types=tuple(c.phone_types),
        international_prefixes=tuple(c.international_prefixes),
        max_per_number_per_day=c.max_per_number_per_day,
        calendar=c.calendar,
        days=tuple(c.days),
        start=c.start,
        end=c.end,
        last_dial_margin_minutes=c.last_dial_margin_minutes,
    )
