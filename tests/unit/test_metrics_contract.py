"""docs/metrics.md is the metric contract: the engine exposes exactly what it lists, and its
code updates every one of them (tests/integration/test_metrics_emitted.py checks that a real
call makes them move)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from prometheus_client import generate_latest

from acd.service import AcdService
from engine.config import AcdSettings
from engine.metrics import Metrics, build_metrics

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "metrics.md"
# Where the engine's code lives (tests and tools are not the engine).
SOURCE_PACKAGES = ("engine", "asterisk", "acd", "ivr", "dialer", "recordings", "auth", "console")
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


def test_every_registered_metric_is_updated_somewhere_in_the_code() -> None:
    # Registered and documented but never touched reads as a flat zero on a dashboard, which
    # looks like "nothing happened" rather than "nobody measures this". Every field of Metrics
    # must be used outside engine/metrics.py (``.inc``, ``.observe``, ``.set``, ``.labels``,
    # ``.set_function``, or handed to the object that does).
    sources = {
        path: path.read_text("utf-8")
        for package in SOURCE_PACKAGES
        if (ROOT / package).is_dir()
        for path in (ROOT / package).rglob("*.py")
        if path != ROOT / "engine" / "metrics.py"
    }
    unused = [
        f.name
        for f in dataclasses.fields(Metrics)
        if f.name != "registry"
        and not any(re.search(rf"\.{f.name}\b", text) for text in sources.values())
    ]
    assert unused == []
