"""Prometheus metrics, all in one registry owned by the engine.

One module so the metric contract is easy to read and test. Adapters receive the ``Metrics``
object they need; nothing registers in the global default registry, so tests can build as many
engines as they like in one process. The engine's registry also carries prometheus_client's
process collector (CPU, memory, file descriptors; Linux only) and platform collector
(``python_info``): the global registry has them by default, this one must add them.
"""

from __future__ import annotations

import asyncio
import platform
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

# How often the event-loop lag is sampled: any stall of a quarter second or more (what a
# caller starts to notice, the event-lag alert's threshold) delays at least one wake-up.
LOOP_LAG_EVERY_SECONDS = 0.25


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    build_info: Gauge
    engine_active: Gauge
    engine_takeovers: Counter
    event_loop_lag: Histogram
    ari_connected: Gauge
    ari_reconnects: Counter
    ari_http_errors: Counter
    ari_event_lag: Histogram
    ami_connected: Gauge
    ami_reconnects: Counter
    dispatch_lag: Histogram
    dispatch_queue_depth: Gauge
    calls_active: Gauge
    calls_total: Counter
    call_duration: Histogram
    db_write_latency: Histogram
    db_write_retries: Counter
    db_pending_writes: Gauge
    db_up: Gauge
    facts_rejected: Counter
    ivr_calls: Counter
    ivr_node_visits: Counter
    ivr_choices: Counter
    ivr_outcomes: Counter
    ivr_time: Histogram
    ivr_digit_to_prompt: Histogram
    ivr_lookups: Counter
    ivr_flow_reloads: Counter
    queue_waiting: Gauge
    queue_longest_wait: Gauge
    queue_expected_wait: Gauge
    queue_service_level: Gauge
    queue_calls: Counter
    queue_wait: Histogram
    agents: Gauge
    agent_offers: Counter
    callbacks_refused: Counter
    talk_time: Histogram
    hold_time: Histogram
    wrap_up_time: Histogram
    hold_reminders: Counter
    agent_feature_codes: Counter
    calls_adopted: Counter
    safeguard_sweep: Histogram
    dialer_running: Gauge
    dialer_attempts: Counter
    dialer_blocked: Counter
    dialer_lines_in_flight: Gauge
    dialer_lines_per_agent: Gauge
    dialer_abandon_ratio: Gauge
    dialer_abandon_cap: Gauge
    dialer_contact_ratio: Gauge
    dialer_occupancy: Gauge
    dialer_records: Gauge
    dialer_right_party_contacts: Counter
    dialer_dispositions: Counter
    dialer_promises: Counter
    dialer_promised_amount: Counter
    dialer_payments: Counter
    dialer_collected_amount: Counter
    dialer_connect_delay: Histogram
    dialer_import_rows: Counter
    auth_logins: Counter
    console_streams: Gauge
    calendar_days_left: Gauge
    calendar_reloads: Counter


def build_metrics() -> Metrics:
    # No `<counter>_created` series: one more gauge per counter and label set, which no
    # dashboard or alert of ours reads.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    r = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=r)
    PlatformCollector(registry=r)
    fast = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
    # Set here, once: what runs does not change while it runs. A dashboard joins on it to
    # show the version, and a rolling upgrade shows as two values side by side.
    build_info = Gauge(
        "sambung_build_info",
        "Always 1; the labels name the engine's version and the Python running it",
        ["version", "python_version"],
        registry=r,
    )
    build_info.labels(version=_version(), python_version=platform.python_version()).set(1)
    return Metrics(
        registry=r,
        build_info=build_info,
        # Set as the lease (engine/lease.py) changes hands; labelled by the engine's
        # [engine] instance_id so that the active one and its standbys read apart.
        engine_active=Gauge(
            "sambung_engine_active",
            "1 while this instance holds the lease and drives Asterisk, 0 while it is a standby",
            ["instance"],
            registry=r,
        ),
        engine_takeovers=Counter(
            "sambung_engine_takeovers",
            "Times this instance took the lease over from another instance",
            ["instance"],
            registry=r,
        ),
        event_loop_lag=Histogram(
            "sambung_event_loop_lag_seconds",
            "How late a timer fires: time the event loop spent on other work past its due time",
            buckets=fast,
            registry=r,
        ),
        ari_connected=Gauge(
            "sambung_ari_connected", "1 while the ARI event stream is connected", registry=r
        ),
        ari_reconnects=Counter(
            "sambung_ari_reconnects", "ARI event stream connects after the first", registry=r
        ),
        ari_http_errors=Counter(
            "sambung_ari_http_errors", "ARI REST calls that failed", ["status"], registry=r
        ),
        ari_event_lag=Histogram(
            "sambung_ari_event_lag_seconds",
            "Time from Asterisk stamping an event to the engine reading it",
            buckets=fast,
            registry=r,
        ),
        ami_connected=Gauge("sambung_ami_connected", "1 while AMI is logged in", registry=r),
        ami_reconnects=Counter("sambung_ami_reconnects", "AMI reconnects", registry=r),
        dispatch_lag=Histogram(
            "sambung_dispatch_lag_seconds",
            "Time an event waits in a call task's queue before the task takes it",
            buckets=fast,
            registry=r,
        ),
        # The dispatcher hands each event straight to its call's inbox; what waits is there.
        dispatch_queue_depth=Gauge(
            "sambung_dispatch_queue_depth",
            "Events the dispatcher routed to call tasks' inboxes and the tasks have not taken yet",
            registry=r,
        ),
        calls_active=Gauge("sambung_calls_active", "Calls with a live call task", registry=r),
        # Outcomes are the fixed set engine.calls.CALL_OUTCOMES, never the features' reasons.
        calls_total=Counter(
            "sambung_calls", "Calls ended, by how they ended", ["direction", "outcome"], registry=r
        ),
        call_duration=Histogram(
            "sambung_call_duration_seconds",
            "Call length from offer to end",
            buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
            registry=r,
        ),
        db_write_latency=Histogram(
            "sambung_db_write_latency_seconds",
            "Time to write one fact to PostgreSQL",
            buckets=fast,
            registry=r,
        ),
        db_write_retries=Counter(
            "sambung_db_write_retries", "Fact writes retried after a database error", registry=r
        ),
        db_pending_writes=Gauge(
            "sambung_db_pending_writes", "Facts waiting to be written to PostgreSQL", registry=r
        ),
        db_up=Gauge("sambung_db_up", "1 while the last database check succeeded", registry=r),
        facts_rejected=Counter(
            "sambung_facts_rejected",
            "Facts PostgreSQL refused for their values, kept in the dead-letter file",
            registry=r,
        ),
        # Labels are bounded by the flow files (flow, node, option keys), never by callers.
        ivr_calls=Counter("sambung_ivr_calls", "Calls that entered a flow", ["flow"], registry=r),
        ivr_node_visits=Counter(
            "sambung_ivr_node_visits", "Nodes entered", ["flow", "node"], registry=r
        ),
        ivr_choices=Counter(
            "sambung_ivr_choices",
            "Menu keys chosen, and invalid or missing input",
            ["flow", "node", "choice"],
            registry=r,
        ),
        ivr_outcomes=Counter(
            "sambung_ivr_outcomes",
            "How IVR sessions ended: completed in the IVR (contained), transferred, abandoned "
            "(the caller hung up in the IVR), failed, lost",
            ["flow", "outcome"],
            registry=r,
        ),
        ivr_time=Histogram(
            "sambung_ivr_time_seconds",
            "Time a caller spent in the IVR",
            ["flow"],
            buckets=(5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600),
            registry=r,
        ),
        ivr_digit_to_prompt=Histogram(
            "sambung_ivr_digit_to_prompt_seconds",
            "From a key press to the start of the prompt it led to (Asterisk's timestamps)",
            buckets=fast,
            registry=r,
        ),
        ivr_lookups=Counter(
            "sambung_ivr_lookups", "CRM lookups by result", ["flow", "result"], registry=r
        ),
        ivr_flow_reloads=Counter(
            "sambung_ivr_flow_reloads", "Flow reloads by result", ["result"], registry=r
        ),
        # Queue and agent labels are bounded by the settings (queue names, agent states).
        queue_waiting=Gauge(
            "sambung_queue_waiting",
            "Calls waiting in the queue (callbacks included)",
            ["queue"],
            registry=r,
        ),
        queue_longest_wait=Gauge(
            "sambung_queue_longest_wait_seconds",
            "Wait so far of the longest-waiting call",
            ["queue"],
            registry=r,
        ),
        queue_expected_wait=Gauge(
            "sambung_queue_expected_wait_seconds",
            "Expected wait of a call joining now (0 also when nobody is staffed)",
            ["queue"],
            registry=r,
        ),
        queue_service_level=Gauge(
            "sambung_queue_service_level_ratio",
            "Share of calls answered within the queue's threshold over the rolling window",
            ["queue"],
            registry=r,
        ),
        queue_calls=Counter(
            "sambung_queue_calls",
            "Queue entries by outcome: offered, answered, abandoned, short_abandoned, overflowed, "
            "callback_requested, callback_connected, callback_failed, callback_refused, "
            "transferred, hung_up, lost",
            ["queue", "outcome"],
            registry=r,
        ),
        queue_wait=Histogram(
            "sambung_queue_wait_seconds",
            "Wait in the queue until answered or abandoned",
            ["queue", "outcome"],
            buckets=(5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 900, 1800),
            registry=r,
        ),
        agents=Gauge("sambung_agents", "Agents by state", ["state"], registry=r),
        agent_offers=Counter(
            "sambung_agent_offers",
            "Calls offered to agents' phones by result: answered, rona, busy, unavailable, "
            "caller_left",
            ["result"],
            registry=r,
        ),
        callbacks_refused=Counter(
            "sambung_callbacks_refused",
            "Callbacks not offered to a waiting caller, or closed before a dial, by reason",
            ["reason"],
            registry=r,
        ),
        talk_time=Histogram(
            "sambung_talk_seconds",
            "Agent talk time per call (hold included)",
            ["queue"],
            buckets=(10, 30, 60, 120, 180, 300, 600, 900, 1800, 3600),
            registry=r,
        ),
        hold_time=Histogram(
            "sambung_hold_seconds",
            "Time a call spent on hold from the agent's phone",
            ["queue"],
            buckets=(5, 15, 30, 60, 120, 300, 600),
            registry=r,
        ),
        wrap_up_time=Histogram(
            "sambung_wrap_up_seconds",
            "Agent wrap-up time after a call",
            ["queue"],
            buckets=(1, 5, 10, 20, 30, 60, 120, 300),
            registry=r,
        ),
        hold_reminders=Counter(
            "sambung_hold_reminders", "Holds that outlasted the reminder time", registry=r
        ),
        agent_feature_codes=Counter(
            "sambung_agent_feature_codes",
            "Desk-phone feature codes by code and result",
            ["code", "result"],
            registry=r,
        ),
        calls_adopted=Counter(
            "sambung_calls_adopted",
            "Waiting callers an earlier engine left, taken over at their place, by entry kind",
            ["kind"],
            registry=r,
        ),
        safeguard_sweep=Histogram(
            "sambung_safeguard_sweep_seconds",
            "Time to refresh the safeguard timeout of every waiting call once",
            buckets=fast,
            registry=r,
        ),
        dialer_running=Gauge(
            "sambung_dialer_campaign_running",
            "1 while the campaign is started (window open or not)",
            ["campaign"],
            registry=r,
        ),
        dialer_attempts=Counter(
            "sambung_dialer_attempts",
            "Dial attempts ended, by outcome",
            ["campaign", "outcome"],
            registry=r,
        ),
        dialer_blocked=Counter(
            "sambung_dialer_blocked",
            "Dials the calling rules stopped at the last check, by reason",
            ["campaign", "reason"],
            registry=r,
        ),
        dialer_lines_in_flight=Gauge(
            "sambung_dialer_lines_in_flight",
            "Lines originated and not yet answered or ended",
            ["campaign"],
            registry=r,
        ),
        dialer_lines_per_agent=Gauge(
            "sambung_dialer_lines_per_agent",
            "Lines in flight per agent logged in to the campaign",
            ["campaign"],
            registry=r,
        ),
        dialer_abandon_ratio=Gauge(
            "sambung_dialer_abandon_ratio",
            "Abandoned live answers over live answers in the campaign's rolling window",
            ["campaign"],
            registry=r,
        ),
        dialer_abandon_cap=Gauge(
            "sambung_dialer_abandon_cap_ratio",
            "The campaign's abandon cap",
            ["campaign"],
            registry=r,
        ),
        dialer_contact_ratio=Gauge(
            "sambung_dialer_contact_ratio",
            "Live answers over ended attempts in the campaign's rolling window",
            ["campaign"],
            registry=r,
        ),
        dialer_occupancy=Gauge(
            "sambung_dialer_agent_occupancy_ratio",
            "Share of logged-in agent time spent on calls and wrap-up since the campaign started",
            ["campaign"],
            registry=r,
        ),
        dialer_records=Gauge(
            "sambung_dialer_records",
            "Campaign records by state",
            ["campaign", "state"],
            registry=r,
        ),
        dialer_right_party_contacts=Counter(
            "sambung_dialer_right_party_contacts",
            "Calls where the agent reached the debtor in person",
            ["campaign"],
            registry=r,
        ),
        dialer_dispositions=Counter(
            "sambung_dialer_dispositions",
            "Dispositions recorded, by code",
            ["campaign", "code"],
            registry=r,
        ),
        dialer_promises=Counter(
            "sambung_dialer_promises",
            "Promises to pay recorded",
            ["campaign"],
            registry=r,
        ),
        dialer_promised_amount=Counter(
            "sambung_dialer_promised_amount",
            "Sum of promised amounts, in the list's currency unit",
            ["campaign"],
            registry=r,
        ),
        dialer_payments=Counter(
            "sambung_dialer_payments",
            "Paid events received",
            ["campaign"],
            registry=r,
        ),
        dialer_collected_amount=Counter(
            "sambung_dialer_collected_amount",
            "Sum of paid amounts, in the list's currency unit",
            ["campaign"],
            registry=r,
        ),
        dialer_connect_delay=Histogram(
            "sambung_dialer_connect_delay_seconds",
            "From a live answer to the agent bridged or the safe-harbour message",
            ["campaign", "result"],
            buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0),
            registry=r,
        ),
        dialer_import_rows=Counter(
            "sambung_dialer_import_rows",
            "Rows read by list imports, by campaign and result",
            ["campaign", "result"],
            registry=r,
        ),
        auth_logins=Counter(
            "sambung_auth_logins",
            "Login attempts, by outcome",
            ["outcome"],
            registry=r,
        ),
        console_streams=Gauge(
            "sambung_console_streams",
            "Open live console screens (server-sent event streams), by page",
            ["page"],
            registry=r,
        ),
        calendar_days_left=Gauge(
            "sambung_calendar_days_left",
            "Days from today (today included) that the holiday calendar covers; 0 = unknown",
            ["calendar"],
            registry=r,
        ),
        calendar_reloads=Counter(
            "sambung_calendar_reloads",
            "Holiday calendar reloads by result",
            ["result"],
            registry=r,
        ),
    )


def _version() -> str:
    try:
        return version("sambung")
    except PackageNotFoundError:
        # A source tree run without being installed: say so rather than guess.
        return "unknown"


async def watch_event_loop_lag(lag: Histogram, every: float = LOOP_LAG_EVERY_SECONDS) -> None:
    """Observe, for ever, how late a sleep of ``every`` seconds wakes up.

    Everything in the engine (call tasks, timers, the ARI reader, HTTP) shares one event loop,
    so a callback that blocks it (CPU-bound work, a synchronous call) delays them all. That
    delay is what this measures, where the ARI event lag would mix it with clock skew and
    Asterisk's own load.
    """
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + every
        await asyncio.sleep(every)
        # asyncio runs a timer up to its clock resolution early: never a negative lag.
        lag.observe(max(0.0, loop.time() - due))
