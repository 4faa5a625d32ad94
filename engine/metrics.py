"""Prometheus metrics, all in one registry owned by the engine.

One module so the metric contract is easy to read and test. Adapters receive the ``Metrics``
object they need; nothing registers in the global default registry, so tests can build as many
engines as they like in one process.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
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
    ivr_calls: Counter
    ivr_node_visits: Counter
    ivr_choices: Counter
    ivr_outcomes: Counter
    ivr_time: Histogram
    ivr_digit_to_prompt: Histogram
    ivr_lookups: Counter
    ivr_flow_reloads: Counter


def build_metrics() -> Metrics:
    r = CollectorRegistry(auto_describe=True)
    fast = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
    return Metrics(
        registry=r,
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
        dispatch_queue_depth=Gauge(
            "sambung_dispatch_queue_depth", "Events waiting in the dispatcher's inbox", registry=r
        ),
        calls_active=Gauge("sambung_calls_active", "Calls with a live call task", registry=r),
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
    )
