"""docs/metrics.md is the metric contract: the engine exposes exactly what it lists."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from prometheus_client import generate_latest

from acd.service import AcdService
from engine.config import AcdSettings
from engine.metrics import Metrics, build_metrics

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
# Words that would make a label's values grow with traffic (and leak personal data).
FORBIDDEN_LABELS = {"call_id", "caller", "number", "phone", "account", "agent_id", "did", "entry"}


def documented() -> dict[str, tuple[str, tuple[str, ...]]]:
    rows: dict[str, tuple[str, tuple[str, ...]]] = {}
    for line in DOC.read_text().splitlines():
        m = re.match(r"^\| `(sambung_[a-z0-9_]+)` \| (\w+) \| ([^|]*) \|", line)
        if m is None:
            continue
        name, kind, labels = m.group(1), m.group(2), m.group(3).strip()
        assert name not in rows, f"{name} is listed twice"
        rows[name] = (kind, () if labels == "-" else tuple(x.strip() for x in labels.split(",")))
    return rows


def exposed_name(kind: str, name: str) -> str:
    return f"{name}_total" if kind == "counter" else name


def registered(metrics: Metrics) -> dict[str, tuple[str, tuple[str, ...]]]:
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    for f in dataclasses.fields(metrics):
        if f.name == "registry":
            continue
        obj = getattr(metrics, f.name)
        out[exposed_name(obj._type, obj._name)] = (obj._type, tuple(obj._labelnames))
    return out


def test_every_documented_metric_is_registered_with_its_type_and_labels() -> None:
    assert documented() == registered(build_metrics())


def test_the_exposition_has_exactly_the_documented_families() -> None:
    metrics = build_metrics()
    # An ACD with a queue registers its per-queue gauges, which are computed at scrape time.
    AcdService(AcdSettings.model_validate({"queues": [{"name": "support"}]}), metrics, lambda: 0.0)
    text = generate_latest(metrics.registry).decode()
    families = {name for name, _ in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M)}
    assert families == set(documented())
    assert 'sambung_queue_waiting{queue="support"} 0.0' in text


def test_no_label_can_carry_a_caller_or_call() -> None:
    for name, (_, labels) in documented().items():
        assert not FORBIDDEN_LABELS & set(labels), name


def test_names_follow_prometheus_conventions() -> None:
    for name, (kind, _) in documented().items():
        assert name.startswith("sambung_")
        assert name.endswith("_total") == (kind == "counter"), name
        if kind == "histogram":
            assert name.endswith(("_seconds", "_ratio")), name
