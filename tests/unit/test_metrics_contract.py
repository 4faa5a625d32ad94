"""docs/metrics.md is the metric contract: the engine exposes exactly what it lists, and its
code updates every one of them (tests/integration/test_metrics_emitted.py checks that a real
call makes them move)."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.metadata
import platform
import re
import sys
import time
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from sambung.acd.model import AcdConfig, QueueConfig
from sambung.acd.service import AcdService
from sambung.engine.metrics import Metrics, build_metrics, watch_event_loop_lag

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "metrics.md"
# Where the engine's code lives (tests and tools are not the engine).
# Words that would make a label's values grow with traffic (and leak personal data).
FORBIDDEN_LABELS = {"call_id", "caller", "number", "phone", "account", "agent_id", "did", "entry"}
# Set once in build_metrics, from what is running: nothing else updates them, by design.
SET_WHEN_BUILT = {"build_info"}


def _rows(prefix: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    rows: dict[str, tuple[str, tuple[str, ...]]] = {}
    for line in DOC.read_text().splitlines():
        m = re.match(rf"^\| `((?:{prefix})[a-z0-9_]+)` \| (\w+) \| ([^|]*) \|", line)
        if m is None:
            continue
        name, kind, labels = m.group(1), m.group(2), m.group(3).strip()
        assert name not in rows, f"{name} is listed twice"
        rows[name] = (kind, () if labels == "-" else tuple(x.strip() for x in labels.split(",")))
    return rows


def documented() -> dict[str, tuple[str, tuple[str, ...]]]:
    """The engine's own metrics, ``sambung_*``."""
    return _rows("sambung_")


def standard() -> dict[str, tuple[str, tuple[str, ...]]]:
    """prometheus_client's process and platform collectors, on the engine's registry."""
    return _rows("process_|python_")


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
    AcdService(AcdConfig(queues=(QueueConfig("support"),)), metrics, lambda: 0.0)
    text = generate_latest(metrics.registry).decode()
    families = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    assert {n for n in families if n.startswith("sambung_")} == set(documented())
    assert 'sambung_queue_waiting{queue="support"} 0.0' in text
    # The process collector reads /proc: on another system its rows are simply absent.
    expected = {
        name: kind
        for name, (kind, _) in standard().items()
        if sys.platform == "linux" or not name.startswith("process_")
    }
    assert {n: k for n, k in families.items() if not n.startswith("sambung_")} == expected


def samples(metrics: Metrics) -> dict[str, list[Sample]]:
    """Sample name -> its samples, from the exposition as Prometheus reads it."""
    out: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
        for s in family.samples:
            out.setdefault(s.name, []).append(s)
    return out


def test_build_info_names_the_installed_version_and_python() -> None:
    (info,) = samples(build_metrics())["sambung_build_info"]
    assert info.value == 1
    assert info.labels == {
        "version": importlib.metadata.version("sambung"),
        "python_version": platform.python_version(),
    }


def test_the_standard_collectors_report_this_process() -> None:
    got = samples(build_metrics())
    (python,) = got["python_info"]
    assert python.labels["version"] == platform.python_version()
    if sys.platform == "linux":
        (fds,) = got["process_open_fds"]
        (limit,) = got["process_max_fds"]
        assert 0 < fds.value < limit.value
        (rss,) = got["process_resident_memory_bytes"]
        assert rss.value > 0


async def test_given_a_blocked_event_loop_then_the_lag_watch_sees_it() -> None:
    metrics = build_metrics()
    watch = asyncio.create_task(watch_event_loop_lag(metrics.event_loop_lag, every=0.05))
    try:
        await asyncio.sleep(0.12)  # a couple of wake-ups on time
        time.sleep(0.3)  # noqa: ASYNC251 - blocks the loop, as CPU-bound work in a callback would
        await asyncio.sleep(0.12)
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
    got = samples(metrics)
    (count,) = got["sambung_event_loop_lag_seconds_count"]
    (total,) = got["sambung_event_loop_lag_seconds_sum"]
    assert count.value >= 3
    # The wake-up due during the block came 0.3 s - 0.05 s late or more; timer noise aside.
    assert total.value >= 0.2


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
    # must be used outside sambung/engine/metrics.py (``.inc``, ``.observe``, ``.set``, ``.labels``,
    # ``.set_function``, or handed to the object that does).
    sources = {
        path: path.read_text("utf-8")
        for path in (ROOT / "sambung").rglob("*.py")
        if path != ROOT / "sambung" / "engine" / "metrics.py"
    }
    unused = [
        f.name
        for f in dataclasses.fields(Metrics)
        if f.name != "registry"
        and f.name not in SET_WHEN_BUILT
        and not any(re.search(rf"\.{f.name}\b", text) for text in sources.values())
    ]
    assert unused == []
