#!/usr/bin/env python3
"""Write Sambung's Grafana dashboards (ops/grafana/dashboards/*.json) from this file.

    python3 ops/grafana/build_dashboards.py          # rewrite the JSON files
    python3 ops/grafana/build_dashboards.py --check  # exit 1 if a file differs from this source

The JSON is what Grafana provisions (ops/grafana/provisioning/dashboards/sambung.yml); this
file is its source, so the four dashboards share one layout, one datasource variable and one
set of units. Edit here, run it, commit both (tests/unit/test_ops_pack.py checks they agree).
Standard library only. Every query uses metrics from docs/metrics.md (the same test checks
names and labels against it).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards"
DS = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"

Json = dict[str, Any]


@dataclass
class Layout:
    """Places panels left to right in rows of 24 grid units."""

    panels: list[Json] = field(default_factory=list)
    x: int = 0
    y: int = 0
    row_h: int = 0

    def add(self, panel: Json, w: int, h: int) -> None:
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        panel["id"] = len(self.panels) + 1
        panel["gridPos"] = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.panels.append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)

    def row(self, title: str) -> None:
        if self.x:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        self.add({"type": "row", "title": title, "collapsed": False, "panels": []}, 24, 1)
        self.x, self.y, self.row_h = 0, self.y + 1, 0


def target(expr: str, legend: str = "", ref: str = "A", instant: bool = False) -> Json:
    t: Json = {"refId": ref, "datasource": DS, "expr": expr, "legendFormat": legend}
    if instant:
        t["instant"] = True
        t["range"] = False
    return t


def targets(*pairs: tuple[str, str], instant: bool = False) -> list[Json]:
    return [target(e, leg, chr(ord("A") + i), instant) for i, (e, leg) in enumerate(pairs)]


def thresholds(*steps: tuple[float | None, str]) -> Json:
    return {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in steps]}


def panel(
    kind: str,
    title: str,
    description: str,
    tgts: list[Json],
    unit: str = "short",
    steps: Json | None = None,
    mappings: list[Json] | None = None,
    options: Json | None = None,
    custom: Json | None = None,
    minmax: tuple[float | None, float | None] = (None, None),
    decimals: int | None = None,
) -> Json:
    defaults: Json = {"unit": unit}
    if steps is not None:
        defaults["thresholds"] = steps
    if mappings:
        defaults["mappings"] = mappings
    if custom:
        defaults["custom"] = custom
    if minmax[0] is not None:
        defaults["min"] = minmax[0]
    if minmax[1] is not None:
        defaults["max"] = minmax[1]
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": tgts,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options or {},
    }


def ts(
    title: str,
    description: str,
    tgts: list[Json],
    unit: str = "short",
    stack: bool = False,
    steps: Json | None = None,
    minmax: tuple[float | None, float | None] = (None, None),
    threshold_line: bool = False,
) -> Json:
    custom: Json = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never"}
    if stack:
        custom.update({"stacking": {"mode": "normal", "group": "A"}, "fillOpacity": 60})
    if threshold_line:
        custom["thresholdsStyle"] = {"mode": "line+area"}
    return panel(
        "timeseries",
        title,
        description,
        tgts,
        unit,
        steps=steps,
        custom=custom,
        minmax=minmax,
        options={
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    )


def stat(
    title: str,
    description: str,
    tgts: list[Json],
    unit: str = "short",
    steps: Json | None = None,
    mappings: list[Json] | None = None,
    decimals: int | None = None,
) -> Json:
    return panel(
        "stat",
        title,
        description,
        tgts,
        unit,
        steps=steps or thresholds((None, "green")),
        mappings=mappings,
        decimals=decimals,
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "none",
            "textMode": "value_and_name",
            "orientation": "auto",
        },
    )


def bars(title: str, description: str, tgts: list[Json], unit: str = "short") -> Json:
    return panel(
        "bargauge",
        title,
        description,
        tgts,
        unit,
        steps=thresholds((None, "blue")),
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "orientation": "horizontal",
            "displayMode": "basic",
            "showUnfilled": True,
        },
    )


UP_DOWN = [
    {
        "type": "value",
        "options": {
            "0": {"text": "down", "color": "red", "index": 0},
            "1": {"text": "up", "color": "green", "index": 1},
        },
    }
]
RED_GREEN = thresholds((None, "red"), (1, "green"))
ACTIVE_STANDBY = [
    {
        "type": "value",
        "options": {
            "0": {"text": "standby", "color": "blue", "index": 0},
            "1": {"text": "active", "color": "green", "index": 1},
        },
    }
]
# Ring-no-answer is one result of the offers counter (there is no counter of its own).
RONA_1H = 'sum(increase(sambung_agent_offers_total{result="rona"}[1h]))'


def quantiles(
    metric: str, matchers: str, by: str, qs: tuple[float, ...], legend: str
) -> list[Json]:
    grouping = f"{by}, le" if by else "le"
    sel = f"{metric}_bucket{{{matchers}}}" if matchers else f"{metric}_bucket"
    return [
        target(
            f"histogram_quantile({q}, sum by ({grouping}) (rate({sel}[{RATE}])))",
            legend.replace("QQ", f"p{round(q * 100)}"),
            chr(ord("A") + i),
        )
        for i, q in enumerate(qs)
    ]


def variable_datasource() -> Json:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "options": [],
    }


def variable_query(name: str, label: str, metric: str) -> Json:
    query = f"label_values({metric}, {name})"
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-values"},
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
        "hide": 0,
        "options": [],
    }


def dashboard(
    uid: str, title: str, description: str, layout: Layout, variables: list[Json]
) -> Json:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["sambung"],
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "links": [
            {
                "title": "Sambung",
                "type": "dashboards",
                "tags": ["sambung"],
                "asDropdown": True,
                "includeVars": False,
                "keepTime": True,
            }
        ],
        "templating": {"list": [variable_datasource(), *variables]},
        "panels": layout.panels,
    }


# ---- (a) queues --------------------------------------------------------------------------------


def queues() -> Json:
    q = 'queue=~"$queue"'
    lay = Layout()
    lay.row("Now")
    lay.add(
        stat(
            "Waiting",
            "Calls waiting in each queue now, callbacks included (sambung_queue_waiting).",
            targets((f"sum by (queue) (sambung_queue_waiting{{{q}}})", "{{queue}}")),
            steps=thresholds((None, "green"), (5, "orange"), (15, "red")),
        ),
        6,
        5,
    )
    lay.add(
        stat(
            "Longest wait",
            "Wait so far of the longest-waiting call in each queue.",
            targets((f"max by (queue) (sambung_queue_longest_wait_seconds{{{q}}})", "{{queue}}")),
            unit="s",
            steps=thresholds((None, "green"), (60, "orange"), (180, "red")),
        ),
        6,
        5,
    )
    lay.add(
        stat(
            "Expected wait",
            "Expected wait of a call joining each queue now (0 also when nobody is staffed).",
            targets((f"max by (queue) (sambung_queue_expected_wait_seconds{{{q}}})", "{{queue}}")),
            unit="s",
            steps=thresholds((None, "green"), (60, "orange"), (180, "red")),
        ),
        6,
        5,
    )
    lay.add(
        stat(
            "Service level",
            "Share of calls answered within the queue's threshold over the rolling window "
            "([acd] service_level_window_seconds). The alert fires below 80%.",
            targets((f"min by (queue) (sambung_queue_service_level_ratio{{{q}}})", "{{queue}}")),
            unit="percentunit",
            steps=thresholds((None, "red"), (0.7, "orange"), (0.8, "green")),
            decimals=1,
        ),
        6,
        5,
    )
    lay.row("Waiting")
    lay.add(
        ts(
            "Waiting calls",
            "Calls waiting per queue.",
            targets((f"sum by (queue) (sambung_queue_waiting{{{q}}})", "{{queue}}")),
        ),
        12,
        8,
    )
    lay.add(
        ts(
            "Longest and expected wait",
            "Longest current wait and the expected wait of a new caller, per queue.",
            targets(
                (
                    f"max by (queue) (sambung_queue_longest_wait_seconds{{{q}}})",
                    "{{queue}} longest",
                ),
                (
                    f"max by (queue) (sambung_queue_expected_wait_seconds{{{q}}})",
                    "{{queue}} expected",
                ),
            ),
            unit="s",
        ),
        12,
        8,
    )
    lay.row("Service")
    lay.add(
        ts(
            "Service level",
            "Rolling service level per queue; the red area is below the 80% target.",
            targets((f"min by (queue) (sambung_queue_service_level_ratio{{{q}}})", "{{queue}}")),
            unit="percentunit",
            steps=thresholds((None, "red"), (0.8, "transparent")),
            minmax=(0, 1),
            threshold_line=True,
        ),
        12,
        8,
    )
    lay.add(
        ts(
            "Abandon rate (15 min)",
            "Abandoned over answered plus abandoned, over 15 minutes (short abandons "
            "excluded). The alert fires above 10% with 10 or more calls.",
            targets(
                (
                    "sum by (queue) (increase(sambung_queue_calls_total"
                    f'{{{q}, outcome="abandoned"}}[15m])) / sum by (queue) '
                    f'(increase(sambung_queue_calls_total{{{q}, outcome=~"answered|abandoned"}}'
                    "[15m]))",
                    "{{queue}}",
                )
            ),
            unit="percentunit",
            steps=thresholds((None, "transparent"), (0.1, "red")),
            minmax=(0, None),
            threshold_line=True,
        ),
        12,
        8,
    )
    lay.add(
        ts(
            "Answered and abandoned per minute",
            "Queue entries leaving answered, abandoned, or abandoned within the short-abandon "
            "time.",
            targets(
                (
                    "sum by (queue, outcome) (rate(sambung_queue_calls_total"
                    f'{{{q}, outcome=~"answered|abandoned|short_abandoned"}}[{RATE}])) * 60',
                    "{{queue}} {{outcome}}",
                )
            ),
            unit="cpm",
        ),
        12,
        8,
    )
    lay.add(
        ts(
            "Other queue outcomes per minute",
            "Offered (every entry), overflows, callbacks, transfers and calls hung up or lost.",
            targets(
                (
                    "sum by (queue, outcome) (rate(sambung_queue_calls_total"
                    f'{{{q}, outcome!~"answered|abandoned|short_abandoned"}}[{RATE}])) * 60',
                    "{{queue}} {{outcome}}",
                )
            ),
            unit="cpm",
        ),
        12,
        8,
    )
    lay.row("Wait distribution")
    lay.add(
        ts(
            "Wait until answered: quantiles",
            "p50, p90 and p99 of the wait of answered calls (sambung_queue_wait_seconds).",
            quantiles(
                "sambung_queue_wait_seconds",
                f'{q}, outcome="answered"',
                "queue",
                (0.5, 0.9, 0.99),
                "{{queue}} QQ",
            ),
            unit="s",
        ),
        12,
        8,
    )
    lay.add(
        ts(
            "Wait until abandoned: quantiles",
            "How long callers held before giving up: p50 and p90.",
            quantiles(
                "sambung_queue_wait_seconds",
                f'{q}, outcome="abandoned"',
                "queue",
                (0.5, 0.9),
                "{{queue}} QQ",
            ),
            unit="s",
        ),
        12,
        8,
    )
    heat = panel(
        "heatmap",
        "Wait until answered: distribution",
        "Answered calls per wait bucket over time, all selected queues.",
        [
            {
                **target(
                    "sum by (le) (increase(sambung_queue_wait_seconds_bucket"
                    f'{{{q}, outcome="answered"}}[$__interval]))',
                    "{{le}}",
                ),
                "format": "heatmap",
            }
        ],
        unit="s",
        options={
            "calculate": False,
            "yAxis": {"unit": "s"},
            "cellGap": 1,
            "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64},
        },
    )
    lay.add(heat, 24, 8)
    return dashboard(
        "sambung-queues",
        "Sambung / Queues",
        "Live hold queues: waiting calls, waits, service level, answers and abandons.",
        lay,
        [variable_query("queue", "Queue", "sambung_queue_waiting")],
    )


# ---- (b) agents --------------------------------------------------------------------------------


def agents() -> Json:
    q = 'queue=~"$queue"'
    lay = Layout()
    lay.row("Now")
    lay.add(
        stat(
            "Agents by state",
            "Agents in each state now (sambung_agents).",
            targets(("sum by (state) (sambung_agents)", "{{state}}")),
            steps=thresholds((None, "blue")),
        ),
        16,
        5,
    )
    lay.add(
        stat(
            "Ring-no-answer (1 h)",
            "Offers not answered within the ring timeout over the last hour; each pauses the "
            "agent with reason rona.",
            targets((RONA_1H, "RONA")),
            steps=thresholds((None, "green"), (5, "orange"), (20, "red")),
            decimals=0,
        ),
        4,
        5,
    )
    lay.add(
        stat(
            "Hold reminders (1 h)",
            "Holds from the desk phone that outlasted [acd] hold_reminder_seconds.",
            targets(("sum(increase(sambung_hold_reminders_total[1h]))", "reminders")),
            steps=thresholds((None, "green"), (5, "orange")),
            decimals=0,
        ),
        4,
        5,
    )
    lay.row("States and offers")
    lay.add(
        ts(
            "Agents by state",
            "Stacked: every logged-in agent is in one state.",
            targets(('sum by (state) (sambung_agents{state!="logged_out"})', "{{state}}")),
            stack=True,
        ),
        12,
        8,
    )
    lay.add(
        ts(
            "Offers by result per minute",
            "Calls offered to agents' phones: answered, rona (no answer in time), busy, "
            "unavailable (not registered) and caller_left (the caller hung up while it rang).",
            targets(
                (
                    f"sum by (result) (rate(sambung_agent_offers_total[{RATE}])) * 60",
                    "{{result}}",
                )
            ),
            unit="cpm",
        ),
        12,
        8,
    )
    lay.add(
        ts(
            "Ring-no-answer per hour",
            "RONA over the last hour, as a rolling count.",
            targets((RONA_1H, "RONA")),
        ),
        12,
        8,
    )
    lay.add(
        ts(
            "Offer answer rate",
            "Answered offers over all offers, 15-minute window.",
            targets(
                (
                    'sum(increase(sambung_agent_offers_total{result="answered"}[15m])) / '
                    "sum(increase(sambung_agent_offers_total[15m]))",
                    "answered",
                )
            ),
            unit="percentunit",
            minmax=(0, 1),
        ),
        12,
        8,
    )
    lay.row("Handle time")
    for metric, title, what in (
        ("sambung_talk_seconds", "Talk time", "Agent talk time per call, hold included"),
        ("sambung_hold_seconds", "Hold time", "Time a call spent on hold from the agent's phone"),
        ("sambung_wrap_up_seconds", "Wrap-up time", "Agent wrap-up time after a call"),
    ):
        lay.add(
            ts(
                f"{title}: quantiles",
                f"{what}: p50 and p90 per queue.",
                quantiles(metric, q, "queue", (0.5, 0.9), "{{queue}} QQ"),
                unit="s",
            ),
            8,
            8,
        )
    lay.row("Desk-phone feature codes")
    lay.add(
        bars(
            "Feature codes in the time range",
            "*51 log in, *52 pause, *53 ready, *59 log out, by result (wrong_pin, refused...).",
            targets(
                (
                    "sum by (code, result) (increase(sambung_agent_feature_codes_total[$__range]))",
                    "{{code}} {{result}}",
                ),
                instant=True,
            ),
        ),
        12,
        8,
    )
    lay.add(
        ts(
            "Feature codes per minute",
            "Feature codes dialled from desk phones, by code and result.",
            targets(
                (
                    f"sum by (code, result) (rate(sambung_agent_feature_codes_total[{RATE}])) * 60",
                    "{{code}} {{result}}",
                )
            ),
            unit="cpm",
        ),
        12,
        8,
    )
    return dashboard(
        "sambung-agents",
        "Sambung / Agents",
        "Agents by state, offers to their phones, ring-no-answer, handle times, feature codes.",
        lay,
        [variable_query("queue", "Queue", "sambung_queue_waiting")],
    )


# ---- (c) dialer and compliance -------------------------------------------------------------------


def dialer() -> Json:
    c = 'campaign=~"$campaign"'
    lay = Layout()
    lay.row("Campaigns")
    lay.add(
        stat(
            "Running",
            "1 while the campaign is started (its calling window may still be closed).",
            targets(
                (f"max by (campaign) (sambung_dialer_campaign_running{{{c}}})", "{{campaign}}")
            ),
            steps=thresholds((None, "text"), (1, "green")),
            mappings=[
                {
                    "type": "value",
                    "options": {
                        "0": {"text": "stopped", "index": 0},
                        "1": {"text": "running", "index": 1},
                    },
                }
            ],
        ),
        8,
        5,
    )
    lay.add(
        bars(
            "Abandon ratio as a share of the cap",
            "Abandon ratio over the campaign's cap: the alert warns at 80% and pages above "
            "100%. Campaigns with a cap of 0 are left out.",
            targets(
                (
                    f"sambung_dialer_abandon_ratio{{{c}}} / "
                    f"(sambung_dialer_abandon_cap_ratio{{{c}}} > 0)",
                    "{{campaign}}",
                ),
                instant=True,
            ),
            unit="percentunit",
        )
        | {
            "fieldConfig": {
                "defaults": {
                    "unit": "percentunit",
                    "min": 0,
                    "max": 1.2,
                    "thresholds": thresholds((None, "green"), (0.8, "orange"), (1, "red")),
                },
                "overrides": [],
            }
        },
        16,
        5,
    )
    lay.row("Pacing")
    lay.add(
        ts(
            "Lines in flight",
            "Lines originated and not yet answered or ended, per campaign.",
            targets((f"sum by (campaign) (sambung_dialer_lines_in_flight{{{c}}})", "{{campaign}}")),
        ),
        12,
        8,
    )
    lay.add(
        ts(
            "Lines per agent",
            "Lines in flight per agent logged in to the campaign: the pacing's over-dial.",
            targets((f"max by (campaign) (sambung_dialer_lines_per_agent{{{c}}})", "{{campaign}}")),
        ),
        12,
        8,
    )
    lay.add(
        ts(
            "Abandon ratio against its cap",
            "Abandoned live answers over live answers in the campaign's rolling window, with "
            "the cap and the 80% warning line.",
            targets(
                (
                    f"max by (campaign) (sambung_dialer_abandon_ratio{{{c}}})",
                    "{{campaign}} abandon",
                ),
                (
                    f"max by (campaign) (sambung_dialer_abandon_cap_ratio{{{c}}})",
                    "{{campaign}} cap",
                ),
                (
                    f"0.8 * max by (campaign) (sambung_dialer_abandon_cap_ratio{{{c}}})",
                    "{{campaign}} 80% of cap",
                ),
            ),
            unit="percentunit",
            minmax=(0, None),
        ),
        12,
        8,
    )
    lay.add(
        ts(
            "Contact ratio and agent occupancy",
            "Live answers over ended attempts (rolling window), and the share of logged-in "
            "agent time on calls and wrap-up since the campaign started.",
            targets(
                (
                    f"max by (campaign) (sambung_dialer_contact_ratio{{{c}}})",
                    "{{campaign}} contact",
                ),
                (
                    f"max by (campaign) (sambung_dialer_agent_occupancy_ratio{{{c}}})",
                    "{{campaign}} occupancy",
                ),
            ),
            unit="percentunit",
            minmax=(0, 1),
        ),
        12,
        8,
    )
    lay.row("Attempts")
    lay.add(
        ts(
            "Attempts by outcome per minute",
            "Dial attempts ended: connected, abandoned (safe-harbour message), machine, "
            "reminder, busy, no_answer, rejected, congestion, invalid_number, failed, cancelled.",
            targets(
                (
                    f"sum by (outcome) (rate(sambung_dialer_attempts_total{{{c}}}[{RATE}])) * 60",
                    "{{outcome}}",
                )
            ),
            unit="cpm",
            stack=True,
        ),
        12,
        8,
    )
    lay.add(
        ts(
            "Blocked dials by reason per minute",
            "Dials the calling rules stopped at the last check: window, holiday, daily_cap, "
            "weekly_cap, dnc, paid, no_number.",
            targets(
                (
                    f"sum by (reason) (rate(sambung_dialer_blocked_total{{{c}}}[{RATE}])) * 60",
                    "{{reason}}",
                )
            ),
            unit="cpm",
        ),
        12,
        8,
    )
    lay.add(
        ts(
            "Connect delay: quantiles",
            "From a live answer to the agent bridged (connected) or the safe-harbour message; "
            "the campaign's connect_limit_seconds bounds it.",
            quantiles(
                "sambung_dialer_connect_delay_seconds",
                c,
                "result",
                (0.5, 0.95, 0.99),
                "{{result}} QQ",
            ),
            unit="s",
        ),
        12,
        8,
    )
    lay.add(
        ts(
            "Records by state",
            "Campaign records: pending, scheduled, dialing, done, stopped.",
            targets((f"sum by (state) (sambung_dialer_records{{{c}}})", "{{state}}")),
            stack=True,
        ),
        12,
        8,
    )
    lay.row("Collections (time range)")
    for title, metric, unit, what in (
        ("Right-party contacts", "sambung_dialer_right_party_contacts_total", "short", "calls"),
        ("Promises to pay", "sambung_dialer_promises_total", "short", "promises"),
        ("Promised amount", "sambung_dialer_promised_amount_total", "short", "list currency"),
        ("Payments", "sambung_dialer_payments_total", "short", "paid events"),
        ("Collected amount", "sambung_dialer_collected_amount_total", "short", "list currency"),
    ):
        lay.add(
            stat(
                title,
                f"{title} in the selected time range ({what}), selected campaigns.",
                targets((f"sum(increase({metric}{{{c}}}[$__range]))", title), instant=True),
                unit=unit,
                steps=thresholds((None, "blue")),
                decimals=0,
            ),
            4,
            5,
        )
    lay.add(
        stat(
            "Import rows",
            "Rows read by list imports in the time range, by result (all campaigns).",
            targets(
                (
                    "sum by (result) "
                    f"(increase(sambung_dialer_import_rows_total{{{c}}}[$__range]))",
                    "{{result}}",
                ),
                instant=True,
            ),
            steps=thresholds((None, "blue")),
            decimals=0,
        ),
        4,
        5,
    )
    lay.add(
        ts(
            "Promises and payments per hour",
            "Promises to pay recorded and paid events received, rolling hour.",
            targets(
                (f"sum(increase(sambung_dialer_promises_total{{{c}}}[1h]))", "promises"),
                (f"sum(increase(sambung_dialer_payments_total{{{c}}}[1h]))", "payments"),
            ),
        ),
        12,
        8,
    )
    lay.add(
        bars(
            "Dispositions in the time range",
            "Dispositions recorded by code (the campaign's disposition schema).",
            targets(
                (
                    f"sum by (code) (increase(sambung_dialer_dispositions_total{{{c}}}[$__range]))",
                    "{{code}}",
                ),
                instant=True,
            ),
        ),
        12,
        8,
    )
    return dashboard(
        "sambung-dialer",
        "Sambung / Dialer and compliance",
        "Outbound campaigns: pacing, abandon ratio against its cap, outcomes, calling-rule "
        "blocks, records, promises and payments.",
        lay,
        [variable_query("campaign", "Campaign", "sambung_dialer_campaign_running")],
    )


# ---- (d) engine health ---------------------------------------------------------------------------


def engine() -> Json:
    lay = Layout()
    lay.row("Now")
    for title, expr, what in (
        ("Engine scraped", 'up{job="sambung"}', "Prometheus reaches the engine's /metrics."),
        ("ARI connected", "sambung_ari_connected", "The ARI event stream is connected."),
        ("AMI connected", "sambung_ami_connected", "AMI is logged in."),
        ("Database up", "sambung_db_up", "The last database check succeeded."),
    ):
        lay.add(
            stat(title, what, targets((expr, "{{instance}}")), steps=RED_GREEN, mappings=UP_DOWN),
            4,
            5,
        )
    lay.add(
        stat(
            "Calls active",
            "Calls with a live call task.",
            targets(("sum(sambung_calls_active)", "calls")),
            steps=thresholds((None, "blue")),
        ),
        4,
        5,
    )
    lay.add(
        stat(
            "Pending writes",
            "Facts waiting to be written to PostgreSQL.",
            targets(("sum(sambung_db_pending_writes)", "facts")),
            steps=thresholds((None, "green"), (100, "orange"), (1000, "red")),
        ),
        4,
        5,
    )
    lay.row("Engines and failover")
    lay.add(
        stat(
            "Role",
            "Which engine holds the lease and drives Asterisk (active) and which wait "
            "(standby). Exactly one should be active; the alert SambungNoActiveEngine fires "
            "when none is for a minute.",
            targets(("max by (instance) (sambung_engine_active)", "{{instance}}")),
            steps=thresholds((None, "blue"), (1, "green")),
            mappings=ACTIVE_STANDBY,
        ),
        8,
        5,
    )
    version = stat(
        "Version",
        "The engine version each instance runs, and its Python (sambung_build_info). Two "
        "versions side by side: a rolling upgrade in progress.",
        targets(
            (
                "max by (instance, version, python_version) (sambung_build_info)",
                "{{instance}}: {{version}} (Python {{python_version}})",
            )
        ),
        steps=thresholds((None, "blue")),
    )
    # The value is always 1: the labels are what there is to read.
    version["options"]["textMode"] = "name"
    lay.add(version, 8, 5)
    lay.add(
        stat(
            "Lease takeovers (24 h)",
            "Times each instance took the lease over from another in the last day: a crash, "
            "a failover or a deploy. More than deploys explain: see the runbook of "
            "SambungNoActiveEngine.",
            targets(
                (
                    "sum by (instance) (increase(sambung_engine_takeovers_total[24h]))",
                    "{{instance}}",
                )
            ),
            steps=thresholds((None, "green"), (3, "orange")),
            decimals=0,
        ),
        8,
        5,
    )
    lay.add(
        ts(
            "Active engine",
            "1 while an instance holds the lease, 0 while it is a standby. A handover shows "
            "as one line dropping and another rising.",
            targets(("max by (instance) (sambung_engine_active)", "{{instance}}")),
            minmax=(0, 1),
        ),
        12,
        8,
    )
    lay.add(
        ts(
            "Lease takeovers per hour",
            "Takeovers of the lease by each instance, as a rolling hour.",
            targets(
                (
                    "sum by (instance) (increase(sambung_engine_takeovers_total[1h]))",
                    "{{instance}}",
                )
            ),
        ),
        12,
        8,
    )
    lay.add(
        ts(
            "Callers taken over per hour",
            "Waiting callers an earlier engine left (a crash, a stop, a takeover) that this "
            "one took over at their place, by entry kind, as a rolling hour.",
            targets(
                (
                    "sum by (kind) (increase(sambung_calls_adopted_total[1h]))",
                    "{{kind}}",
                )
            ),
        ),
        12,
        8,
    )
    lay.add(
        ts(
            "Safeguard sweep: quantiles",
            "Time to refresh the Asterisk-side timeout of every waiting call once. It must "
            "stay far below a third of [acd] adopt_within_seconds.",
            quantiles(
                "sambung_safeguard_sweep_seconds", "", "instance", (0.5, 0.99), "{{instance}} QQ"
            ),
            unit="s",
        ),
        12,
        8,
    )
    lay.row("Process")
    # process_* also come from Prometheus's own job: only the engine's are wanted here.
    job = 'job="sambung"'
    lay.add(
        ts(
            "CPU",
            "CPU time used per second (1 = one core). The event loop runs on one core: near 1 "
            "means calls wait for it (see event-loop lag).",
            targets(
                (
                    f"sum by (instance) (rate(process_cpu_seconds_total{{{job}}}[{RATE}]))",
                    "{{instance}}",
                )
            ),
            unit="percentunit",
            minmax=(0, None),
        ),
        6,
        8,
    )
    lay.add(
        ts(
            "Memory (RSS)",
            "Resident memory of the engine's process. Steady growth with steady traffic is a leak.",
            targets(
                (
                    f"max by (instance) (process_resident_memory_bytes{{{job}}})",
                    "{{instance}}",
                )
            ),
            unit="bytes",
        ),
        6,
        8,
    )
    lay.add(
        ts(
            "Open file descriptors",
            "Open file descriptors (sockets included) against the process's limit "
            "(LimitNOFILE). At the limit, new calls' connections and database connections fail.",
            targets(
                (f"max by (instance) (process_open_fds{{{job}}})", "{{instance}} open"),
                (f"max by (instance) (process_max_fds{{{job}}})", "{{instance}} limit"),
            ),
        ),
        6,
        8,
    )
    lay.add(
        ts(
            "Event-loop lag: quantiles",
            "How late the engine's timers fire: time the event loop, which every call shares, "
            "spent on other work past their due time. Near 250 ms callers notice menus "
            "reacting late.",
            quantiles(
                "sambung_event_loop_lag_seconds", "", "instance", (0.5, 0.99), "{{instance}} QQ"
            ),
            unit="s",
        ),
        6,
        8,
    )
    lay.row("Asterisk connection")
    lay.add(
        ts(
            "Reconnects per hour",
            "ARI event stream connects after the first, and AMI reconnects.",
            targets(
                (
                    "sum by (instance) (increase(sambung_ari_reconnects_total[1h]))",
                    "{{instance}} ARI",
                ),
                (
                    "sum by (instance) (increase(sambung_ami_reconnects_total[1h]))",
                    "{{instance}} AMI",
                ),
            ),
        ),
        8,
        8,
    )
    lay.add(
        ts(
            "ARI HTTP errors per minute",
            "ARI REST calls that failed, by status. 404 on a channel is usually a hang-up race.",
            targets(
                (
                    f"sum by (status) (rate(sambung_ari_http_errors_total[{RATE}])) * 60",
                    "{{status}}",
                )
            ),
            unit="cpm",
        ),
        8,
        8,
    )
    lay.add(
        ts(
            "ARI event lag: quantiles",
            "From Asterisk stamping an event to the engine reading it (includes clock skew "
            "between the hosts). The alert fires at p99 above 250 ms.",
            quantiles(
                "sambung_ari_event_lag_seconds", "", "instance", (0.5, 0.99), "{{instance}} QQ"
            ),
            unit="s",
        ),
        8,
        8,
    )
    lay.row("Engine")
    lay.add(
        ts(
            "Dispatch lag: quantiles",
            "Time an event waits in a call task's queue before the task takes it.",
            quantiles(
                "sambung_dispatch_lag_seconds", "", "instance", (0.5, 0.99), "{{instance}} QQ"
            ),
            unit="s",
        ),
        8,
        8,
    )
    lay.add(
        ts(
            "Dispatcher inbox",
            "Events the dispatcher routed to call tasks' inboxes that the tasks have not taken "
            "yet. Above 0 for long: call tasks are not keeping up (see dispatch lag).",
            targets(("sum by (instance) (sambung_dispatch_queue_depth)", "{{instance}}")),
        ),
        8,
        8,
    )
    lay.add(
        ts(
            "Calls active",
            "Calls with a live call task.",
            targets(("sum by (instance) (sambung_calls_active)", "{{instance}}")),
        ),
        8,
        8,
    )
    lay.add(
        ts(
            "Calls ended per minute",
            "Calls ended by direction and outcome.",
            targets(
                (
                    f"sum by (direction, outcome) (rate(sambung_calls_total[{RATE}])) * 60",
                    "{{direction}} {{outcome}}",
                )
            ),
            unit="cpm",
        ),
        12,
        8,
    )
    lay.add(
        ts(
            "Call duration: quantiles",
            "Call length from offer to end.",
            quantiles("sambung_call_duration_seconds", "", "", (0.5, 0.9), "QQ"),
            unit="s",
        ),
        12,
        8,
    )
    lay.row("Database")
    lay.add(
        ts(
            "Database write latency: quantiles",
            "Time to write one fact to PostgreSQL.",
            quantiles(
                "sambung_db_write_latency_seconds", "", "instance", (0.5, 0.99), "{{instance}} QQ"
            ),
            unit="s",
        ),
        8,
        8,
    )
    lay.add(
        ts(
            "Pending writes",
            "Facts waiting to be written to PostgreSQL, safe on disk in the engine's spool; "
            "they grow while PostgreSQL is down or refuses writes.",
            targets(("sum by (instance) (sambung_db_pending_writes)", "{{instance}}")),
        ),
        8,
        8,
    )
    lay.add(
        ts(
            "Write retries per minute",
            "Fact writes retried after a database error.",
            targets(
                (
                    f"sum by (instance) (rate(sambung_db_write_retries_total[{RATE}])) * 60",
                    "{{instance}}",
                )
            ),
            unit="cpm",
        ),
        8,
        8,
    )
    lay.row("IVR")
    lay.add(
        ts(
            "IVR outcomes per minute",
            "How IVR sessions ended: completed (contained), transferred, abandoned, failed, lost.",
            targets(
                (
                    f"sum by (flow, outcome) (rate(sambung_ivr_outcomes_total[{RATE}])) * 60",
                    "{{flow}} {{outcome}}",
                )
            ),
            unit="cpm",
            stack=True,
        ),
        12,
        8,
    )
    lay.add(
        ts(
            "IVR containment (1 h)",
            "Sessions completed in the IVR over all sessions that ended, rolling hour.",
            targets(
                (
                    'sum by (flow) (increase(sambung_ivr_outcomes_total{outcome="completed"}[1h])) '
                    "/ sum by (flow) (increase(sambung_ivr_outcomes_total[1h]))",
                    "{{flow}}",
                )
            ),
            unit="percentunit",
            minmax=(0, 1),
        ),
        12,
        8,
    )
    lay.add(
        ts(
            "Calls entering flows per minute",
            "Calls that entered each IVR flow.",
            targets(
                (
                    f"sum by (flow) (rate(sambung_ivr_calls_total[{RATE}])) * 60",
                    "{{flow}}",
                )
            ),
            unit="cpm",
        ),
        12,
        8,
    )
    lay.add(
        ts(
            "Time in the IVR: quantiles",
            "Time a caller spent in each flow: p50 and p90.",
            quantiles("sambung_ivr_time_seconds", "", "flow", (0.5, 0.9), "{{flow}} QQ"),
            unit="s",
        ),
        12,
        8,
    )
    lay.add(
        ts(
            "Key press to prompt: quantiles",
            "From a key press to the start of the prompt it led to (Asterisk's timestamps).",
            quantiles("sambung_ivr_digit_to_prompt_seconds", "", "", (0.5, 0.99), "QQ"),
            unit="s",
        ),
        8,
        8,
    )
    lay.add(
        ts(
            "CRM lookups per minute",
            "Lookups by flow and result.",
            targets(
                (
                    f"sum by (flow, result) (rate(sambung_ivr_lookups_total[{RATE}])) * 60",
                    "{{flow}} {{result}}",
                )
            ),
            unit="cpm",
        ),
        8,
        8,
    )
    lay.add(
        bars(
            "Flow reloads in the time range",
            "Flow reloads by result; a refused reload keeps the old flow.",
            targets(
                (
                    "sum by (result) (increase(sambung_ivr_flow_reloads_total[$__range]))",
                    "{{result}}",
                ),
                instant=True,
            ),
        ),
        8,
        8,
    )
    lay.row("Access")
    lay.add(
        ts(
            "Logins per minute",
            "Login attempts by outcome. The alert fires above 10 failed or rate-limited a "
            "minute for 10 minutes.",
            targets(
                (
                    f"sum by (outcome) (rate(sambung_auth_logins_total[{RATE}])) * 60",
                    "{{outcome}}",
                )
            ),
            unit="cpm",
            stack=True,
        ),
        12,
        8,
    )
    lay.add(
        ts(
            "Open console screens",
            "Agent consoles and wallboards with a live stream open.",
            targets(("sum by (page) (sambung_console_streams)", "{{page}}")),
        ),
        12,
        8,
    )
    return dashboard(
        "sambung-engine",
        "Sambung / Engine health",
        "The engine itself: which instance is active and its version, failover, CPU, memory, "
        "file descriptors and event-loop lag, Asterisk connection, event and dispatch lag, "
        "database, calls, IVR, logins and open console screens.",
        lay,
        [],
    )


DASHBOARDS = {
    "sambung-queues.json": queues,
    "sambung-agents.json": agents,
    "sambung-dialer.json": dialer,
    "sambung-engine.json": engine,
}


def render() -> dict[str, str]:
    return {name: json.dumps(build(), indent=2) + "\n" for name, build in DASHBOARDS.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render().items():
        path = OUT / name
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(name)
        else:
            OUT.mkdir(exist_ok=True)
            path.write_text(text)
    if stale:
        print(f"out of date, run {Path(__file__).name}: {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
