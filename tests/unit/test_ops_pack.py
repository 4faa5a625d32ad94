"""The operations pack (ops/prometheus, ops/grafana, ops/systemd, ops/compose) is valid and
speaks only the metric contract.

- Prometheus: `promtool check config`, `check rules` and `test rules`; every alert has a unit
  test where it fires and one where it stays quiet, and a `runbook_url` to its entry in
  docs/operations.md.
- Every PromQL expression (alert rules, dashboard panels, dashboard variables) names only
  metrics of docs/metrics.md (plus `up`), matches only labels those metrics have, uses only
  documented label values where the contract lists them, and groups only by labels present.
- Grafana: dashboards are valid JSON generated from ops/grafana/build_dashboards.py, with
  unique uids and panel ids, a datasource and a query on every panel; provisioning points
  where compose.yaml mounts the dashboards.
- systemd: the unit parses (and passes `systemd-analyze verify` where systemd is installed),
  runs the documented install layout as a dedicated user with an EnvironmentFile, and gives
  the staged shutdown longer than the drain.
- Compose: `docker compose config -q` (or Debian's docker-compose) where installed, and always
  a structural check: services, healthchecks, no plaintext secrets, every secret, volume,
  network, bind mount, build context and Dockerfile COPY source exists.

promtool and docker-compose come from ops/lib.sh's ensure_ops_tools (ops/test runs it).
Outside CI a missing tool skips its test; under CI (CI=true) it fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from sambung.engine.config import EngineSettings

ROOT = Path(__file__).resolve().parents[2]
OPS = ROOT / "ops"
PROM = OPS / "prometheus"
GRAFANA = OPS / "grafana"
COMPOSE_DIR = OPS / "compose"
COMPOSE = COMPOSE_DIR / "compose.yaml"
UNIT = OPS / "systemd" / "sambung.service"
METRICS_DOC = ROOT / "docs" / "metrics.md"
OPERATIONS_DOC = ROOT / "docs" / "operations.md"
UNDER_CI = os.environ.get("CI", "").lower() == "true"

REQUIRED_ALERTS = {
    "SambungQueueServiceLevelLow",
    "SambungQueueAbandonSpike",
    "SambungDialerAbandonNearCap",
    "SambungAriDown",
    "SambungDatabaseDown",
    "SambungEventLagHigh",
    "SambungEngineDown",
    "SambungNoActiveEngine",
}
# Labels Prometheus itself attaches to every scraped series.
TARGET_LABELS = {"job", "instance"}
BUILTIN_METRICS = {"up": ("gauge", ())}


def run(*cmd: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def tool(name: str) -> str:
    """The tool's path; skip (or fail under CI) when it is not installed."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        message = f"{name} is not installed (ops/lib.sh ensure_ops_tools installs it)"
        if UNDER_CI:
            pytest.fail(message)
        pytest.skip(message)
    return found


# ---- the metric contract ---------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    kind: str
    labels: frozenset[str]


def documented_metrics() -> dict[str, Metric]:
    rows: dict[str, Metric] = {}
    for line in METRICS_DOC.read_text().splitlines():
        # The engine's own metrics, and prometheus_client's process and platform collectors.
        m = re.match(r"^\| `((?:sambung|process|python)_[a-z0-9_]+)` \| (\w+) \| ([^|]*) \|", line)
        if m:
            labels = m.group(3).strip()
            names = () if labels == "-" else (x.strip() for x in labels.split(","))
            rows[m.group(1)] = Metric(m.group(2), frozenset(names))
    for name, (kind, labels) in BUILTIN_METRICS.items():
        rows[name] = Metric(kind, frozenset(labels))
    return rows


def documented_values() -> dict[tuple[str, str], frozenset[str]]:
    """(metric, label) -> the values the contract's "Label values" list enumerates."""
    text = METRICS_DOC.read_text()
    _, _, section = text.partition("Label values:")
    bullets = re.split(r"\n- ", "\n" + section)
    out: dict[tuple[str, str], frozenset[str]] = {}
    for bullet in bullets:
        bullet = " ".join(bullet.split())
        m = re.match(r"`(\w+)` of `(sambung_\w+)`: (.*)", bullet)
        if not m:
            continue
        metric = m.group(2)
        parts = [(m.group(1), m.group(3))]
        # "...; `result`: ok, wrong_pin" names a second label of the same metric.
        first, *more = m.group(3).split("; ")
        if more:
            parts = [(m.group(1), first)]
            for extra in more:
                em = re.match(r"`(\w+)`: (.*)", extra)
                if em:
                    parts.append((em.group(1), em.group(2)))
        for label, listing in parts:
            listing = re.sub(r"\([^)]*\)", "", listing)
            listing = re.split(r"\.(\s|$)", listing)[0]
            items = [i.strip().strip("`").strip() for i in re.split(r",| or ", listing)]
            items = [i for i in items if i]
            if items and all(re.fullmatch(r"[\w*]+", i) for i in items):
                out[(metric, label)] = frozenset(items)
    return out


def test_the_contract_parses_with_its_label_values() -> None:
    metrics = documented_metrics()
    values = documented_values()
    assert len(metrics) > 40
    assert "short_abandoned" in values[("sambung_queue_calls_total", "outcome")]
    assert values[("sambung_agent_feature_codes_total", "code")] == {
        "*51",
        "*52",
        "*53",
        "*59",
        "other",
    }
    assert "wrong_pin" in values[("sambung_agent_feature_codes_total", "result")]
    assert "safe_harbour" in values[("sambung_dialer_connect_delay_seconds", "result")]
    # Not enumerations: campaign names and disposition codes come from the settings.
    assert ("sambung_dialer_dispositions_total", "code") not in values


# ---- a small PromQL reader --------------------------------------------------------------------

KEYWORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "inf",
    "nan",
}
FUNCTIONS = {
    "abs",
    "absent",
    "absent_over_time",
    "avg",
    "avg_over_time",
    "bottomk",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "count",
    "count_over_time",
    "count_values",
    "delta",
    "deriv",
    "floor",
    "group",
    "histogram_quantile",
    "idelta",
    "increase",
    "irate",
    "label_replace",
    "label_values",
    "last_over_time",
    "max",
    "max_over_time",
    "min",
    "min_over_time",
    "predict_linear",
    "quantile",
    "quantile_over_time",
    "rate",
    "resets",
    "round",
    "scalar",
    "sort",
    "sort_desc",
    "stddev",
    "sum",
    "sum_over_time",
    "time",
    "timestamp",
    "topk",
    "vector",
}
_IDENT = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_STRING = r'"(?:[^"\\]|\\.)*"' + r"|'(?:[^'\\]|\\.)*'"
_SELECTOR = re.compile(rf"({_IDENT})?\s*\{{((?:{_STRING}|[^}}\"'])*)\}}")
_MATCHER = re.compile(rf"\s*({_IDENT})\s*(=~|!~|!=|=)\s*({_STRING})\s*,?")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")


@dataclass
class Query:
    where: str
    expr: str


def base_metric(name: str, metrics: dict[str, Metric]) -> tuple[str, bool] | None:
    """The documented metric a series name belongs to, and whether it is a histogram bucket."""
    if name in metrics:
        return name, False
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix):
            base = name[: -len(suffix)]
            if base in metrics and metrics[base].kind == "histogram":
                return base, suffix == "_bucket"
    return None


def check_query(q: Query, metrics: dict[str, Metric], values: Any) -> list[str]:
    problems: list[str] = []
    expr = re.sub(r"\$\{(\w+)\}", r"$\1", q.expr)
    used: dict[str, bool] = {}

    def note(name: str) -> str | None:
        found = base_metric(name, metrics)
        if found is None:
            problems.append(f"{q.where}: {name!r} is not in docs/metrics.md")
            return None
        used[found[0]] = used.get(found[0], False) or found[1]
        return found[0]

    label_values = re.fullmatch(
        rf"\s*label_values\(\s*(?:({_IDENT})\s*,\s*)?({_IDENT})\s*\)\s*", expr
    )
    if label_values:
        if label_values.group(1) is None:
            problems.append(f"{q.where}: label_values() without a metric scans every series")
            return problems
        base = note(label_values.group(1))
        if base and label_values.group(2) not in metrics[base].labels:
            problems.append(f"{q.where}: {base} has no label {label_values.group(2)!r}")
        return problems

    for sel in _SELECTOR.finditer(expr):
        name, body = sel.group(1), sel.group(2)
        if name is None or name in KEYWORDS:
            problems.append(f"{q.where}: a selector without a metric name: {sel.group(0)}")
            continue
        base = note(name)
        if base is None:
            continue
        allowed = metrics[base].labels | TARGET_LABELS
        if name.endswith("_bucket"):
            allowed |= {"le"}
        rest = _MATCHER.sub("", body).strip()
        if rest:
            problems.append(f"{q.where}: cannot read matchers {body!r}")
        for m in _MATCHER.finditer(body):
            label, op, raw = m.group(1), m.group(2), m.group(3)[1:-1]
            if label not in allowed:
                problems.append(f"{q.where}: {base} has no label {label!r}")
                continue
            known = values.get((base, label))
            if known is None or "$" in raw:
                continue
            wanted = raw.split("|") if op in ("=~", "!~") else [raw]
            if not all(re.fullmatch(r"[\w*]+", w) for w in wanted):
                continue  # a real regular expression: nothing to compare
            for w in wanted:
                if w not in known:
                    problems.append(f"{q.where}: {base}{{{label}}} has no value {w!r}")

    bare = _SELECTOR.sub(lambda m: (m.group(1) or "") + " ", expr)
    bare = re.sub(_STRING, " ", bare)
    bare = re.sub(r"\[[^\]]*\]", " ", bare)
    grouping: list[str] = []
    for g in _GROUPING.finditer(bare):
        grouping += [x.strip() for x in g.group(2).split(",") if x.strip()]
    bare = _GROUPING.sub(" ", bare)
    bare = re.sub(r"\$\w+", " ", bare)
    for m in re.finditer(rf"(?<![\w.]){_IDENT}", bare):
        word = m.group(0)
        called = bare[m.end() :].lstrip().startswith("(")
        if called:
            if word not in FUNCTIONS:
                problems.append(f"{q.where}: unknown function {word}()")
        elif word not in KEYWORDS:
            note(word)
    present = set(TARGET_LABELS)
    for base, bucket in used.items():
        present |= metrics[base].labels | ({"le"} if bucket else set())
    for label in grouping:
        if label not in present:
            problems.append(f"{q.where}: groups by {label!r}, which no metric here has")
    return problems


def test_the_promql_reader_catches_what_it_should() -> None:
    metrics, values = documented_metrics(), documented_values()

    def problems(expr: str) -> list[str]:
        return check_query(Query("t", expr), metrics, values)

    assert (
        problems('sum by (queue) (rate(sambung_queue_calls_total{outcome="answered"}[5m]))') == []
    )
    assert (
        problems(
            "histogram_quantile(0.9, sum by (le, queue) (rate(sambung_queue_wait_seconds_bucket"
            '{queue=~"$queue", outcome="answered"}[$__rate_interval])))'
        )
        == []
    )
    assert problems("label_values(sambung_queue_waiting, queue)") == []
    assert problems('up{job="sambung"} == 0') == []
    assert problems("sambung_queue_wating") != []  # a typo
    assert problems('sambung_queue_waiting{campaign="x"}') != []  # a label it lacks
    assert problems('sambung_queue_calls_total{outcome="answerd"}') != []  # a value it lacks
    assert problems('sambung_queue_calls_total{outcome=~"answered|abandonned"}') != []
    assert problems("sum by (campaign) (sambung_queue_waiting)") != []  # grouping label
    assert problems("sambung_queue_waiting_bucket") != []  # a gauge has no buckets
    assert problems("label_values(sambung_agents, queue)") != []
    assert problems("rat(sambung_agents[5m])") != []


# ---- what the pack contains -------------------------------------------------------------------


def rule_files() -> list[Path]:
    return sorted((PROM / "rules").glob("*.yml"))


def alert_rules() -> Iterator[dict[str, Any]]:
    for path in rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            yield from group["rules"]


def dashboard_files() -> list[Path]:
    return sorted((GRAFANA / "dashboards").glob("*.json"))


def dashboards() -> dict[Path, dict[str, Any]]:
    return {p: json.loads(p.read_text()) for p in dashboard_files()}


def panels(dash: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for p in dash["panels"]:
        yield p
        yield from p.get("panels", [])


def all_queries() -> list[Query]:
    out = [Query(f"rule {r.get('alert', r.get('record'))}", r["expr"]) for r in alert_rules()]
    for path, dash in dashboards().items():
        for p in panels(dash):
            for t in p.get("targets", []):
                out.append(Query(f"{path.name} panel {p['title']!r}", t["expr"]))
        for v in dash["templating"]["list"]:
            if v["type"] == "query":
                query = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
                out.append(Query(f"{path.name} variable {v['name']}", query))
    return out


def test_the_pack_has_its_files() -> None:
    assert (PROM / "prometheus.yml").is_file()
    assert rule_files()
    assert sorted(p.name for p in dashboard_files()) == [
        "sambung-agents.json",
        "sambung-dialer.json",
        "sambung-engine.json",
        "sambung-queues.json",
    ]
    for path in (UNIT, COMPOSE, OPERATIONS_DOC):
        assert path.is_file(), path


def test_every_query_uses_only_the_metric_contract() -> None:
    metrics, values = documented_metrics(), documented_values()
    queries = all_queries()
    assert len(queries) > 80
    problems = [p for q in queries for p in check_query(q, metrics, values)]
    assert not problems, "\n".join(problems)


# ---- Prometheus -------------------------------------------------------------------------------


def test_promtool_check_config(tmp_path: Path) -> None:
    promtool = tool("promtool")
    # promtool opens the scrape token file; the real one lives outside the repository, so the
    # copy checked here points that one key at a stand-in.
    copy = tmp_path / "prometheus"
    shutil.copytree(PROM, copy)
    config = (copy / "prometheus.yml").read_text()
    token = "/etc/prometheus/sambung-metrics-token"
    assert f"credentials_file: {token}" in config
    (tmp_path / "token").write_text("0123456789abcdef-token")
    (copy / "prometheus.yml").write_text(config.replace(token, str(tmp_path / "token")))
    r = run(promtool, "check", "config", str(copy / "prometheus.yml"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout + r.stderr


def test_promtool_check_rules() -> None:
    r = run(tool("promtool"), "check", "rules", *map(str, rule_files()))
    assert r.returncode == 0, r.stdout + r.stderr


def test_promtool_rule_unit_tests_pass() -> None:
    tests = sorted((PROM / "tests").glob("*.test.yml"))
    assert tests
    r = run(tool("promtool"), "test", "rules", *map(str, tests))
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_alert_is_tested_firing_and_quiet_and_has_a_runbook() -> None:
    alerts = {r["alert"]: r for r in alert_rules() if "alert" in r}
    assert set(alerts) >= REQUIRED_ALERTS
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in (PROM / "tests").glob("*.test.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for t in case.get("alert_rule_test", []):
                (firing if t.get("exp_alerts") else quiet).add(t["alertname"])
    assert set(alerts) <= firing, f"never tested firing: {set(alerts) - firing}"
    assert set(alerts) <= quiet, f"never tested quiet: {set(alerts) - quiet}"
    anchors = doc_anchors(OPERATIONS_DOC)
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert rule.get("for"), f"{name}: no for: duration"
        assert rule["annotations"].get("summary"), name
        # runbook_url is what Alertmanager's and Grafana's tooling look for.
        assert "runbook" not in rule["annotations"], f"{name}: runbook_url, not runbook"
        doc, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert doc == "docs/operations.md", name
        assert anchor in anchors, f"{name}: no heading for runbook anchor {anchor}"


def test_every_alert_has_a_comment_that_justifies_it() -> None:
    for path in rule_files():
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if line.strip().startswith("- alert:"):
                assert lines[i - 1].strip().startswith("#"), f"{path.name}: {line.strip()}"


def doc_anchors(path: Path) -> set[str]:
    """Heading anchors as GitHub makes them."""
    anchors = set()
    for line in path.read_text().splitlines():
        m = re.match(r"^#{1,6}\s+(.*)", line)
        if m:
            text = unicodedata.normalize("NFKC", m.group(1).strip()).lower()
            text = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
            anchors.add(text)
    return anchors


# ---- Grafana ----------------------------------------------------------------------------------


def test_dashboards_are_what_the_generator_makes() -> None:
    r = run(sys.executable, str(GRAFANA / "build_dashboards.py"), "--check")
    assert r.returncode == 0, r.stdout + r.stderr


def test_dashboards_are_well_formed() -> None:
    uids: list[str] = []
    for path, dash in dashboards().items():
        uids.append(dash["uid"])
        assert dash["title"].startswith("Sambung"), path.name
        variables = {v["name"]: v for v in dash["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource", path.name
        assert variables["datasource"]["query"] == "prometheus", path.name
        ids = [p["id"] for p in panels(dash)]
        assert len(ids) == len(set(ids)), f"{path.name}: panel ids repeat"
        for p in panels(dash):
            where = f"{path.name} {p['title']!r}"
            assert {"x", "y", "w", "h"} <= set(p["gridPos"]), where
            if p["type"] == "row":
                continue
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
            assert p["targets"], f"{where}: no query"
            assert p["fieldConfig"]["defaults"].get("unit"), f"{where}: no unit"
            for t in p["targets"]:
                assert t["expr"].strip(), where
                assert t["datasource"]["uid"] == "${datasource}", where
                for var in re.findall(r"\$(?!__)(\w+)", t["expr"]):
                    assert var in variables, f"{where}: ${var} is not a dashboard variable"
    assert len(uids) == len(set(uids)), "dashboard uids repeat"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def interpolate(value: str) -> str:
    """Compose's ${VAR:-default}, taking the default (as a fresh checkout does)."""

    def repl(m: re.Match[str]) -> str:
        assert m.group(2) is not None, f"${{{m.group(1)}}} has no default"
        return m.group(2)

    return re.sub(r"\$\{(\w+)(?::-([^}]*))?\}", repl, value)


def binds(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of the service's bind mounts."""
    out = {}
    for v in service.get("volumes", []):
        source, target = interpolate(v).split(":")[:2]
        if source.startswith((".", "/")):
            out[target] = (COMPOSE_DIR / source).resolve()
    return out


def test_grafana_provisioning_points_at_the_dashboards() -> None:
    grafana = compose()["services"]["grafana"]
    mounts = binds(grafana)
    assert mounts["/etc/grafana/provisioning"] == (GRAFANA / "provisioning").resolve()
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/sambung.yml").read_text())
    for p in provider["providers"]:
        path = p["options"]["path"]
        assert mounts.get(path) == (GRAFANA / "dashboards").resolve(), path
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    folder, _, name = home.rpartition("/")
    assert (mounts[folder] / name).is_file()
    sources = yaml.safe_load((GRAFANA / "provisioning/datasources/sambung.yml").read_text())
    (ds,) = sources["datasources"]
    assert ds["type"] == "prometheus"
    listen = next(a for a in compose()["services"]["prometheus"]["command"] if "listen" in a)
    assert ds["url"] == "http://" + listen.split("=", 1)[1]


# ---- systemd ----------------------------------------------------------------------------------


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """systemd's unit syntax, strictly: sections, Key=value (keys may repeat), comments."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for n, raw in enumerate(text.replace("\\\n", " ").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            assert re.fullmatch(r"\[[A-Za-z]+\]", line), f"line {n}: {line}"
            current = sections.setdefault(line[1:-1], {})
            continue
        m = re.fullmatch(r"([A-Za-z][A-Za-z0-9]*)=(.*)", line)
        assert m, f"line {n} is not Key=value: {line}"
        assert current is not None, f"line {n} is outside a section: {line}"
        current.setdefault(m.group(1), []).append(m.group(2).strip())
    return sections


def seconds(value: str) -> float:
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*(min|ms|s|h|m)?", value):
        total += float(number) * {"": 1, "s": 1, "ms": 0.001, "min": 60, "m": 60, "h": 3600}[unit]
    return total


def test_the_systemd_unit_runs_the_documented_layout() -> None:
    unit = parse_unit(UNIT.read_text())
    service = unit["Service"]
    assert unit["Unit"]["Description"]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    assert service["User"] == ["sambung"]
    assert service["Group"] == ["sambung"]
    assert service["EnvironmentFile"] == ["/etc/sambung/sambung.env"]
    assert service["Restart"] == ["on-failure"]
    # The console script pyproject.toml installs, in the virtualenv the layout documents.
    (start,) = service["ExecStart"]
    binary, command = start.split()
    assert binary == "/opt/sambung/venv/bin/sambung"
    assert command == "run"
    project = (ROOT / "pyproject.toml").read_text()
    assert 'sambung = "sambung.engine.cli:main"' in project
    assert "/opt/sambung/venv" in OPERATIONS_DOC.read_text()
    # Staged shutdown: drain, then adapters and up to 5 s of fact writes, before SIGKILL.
    drain = EngineSettings().drain_timeout_seconds
    (stop,) = service["TimeoutStopSec"]
    assert seconds(stop) >= drain + 30, f"TimeoutStopSec={stop} with a {drain} s drain"
    assert service["KillSignal"] == ["SIGTERM"]  # sambung/engine/cli.py: SIGTERM -> staged shutdown
    assert "-HUP" in service["ExecReload"][0]  # sambung/engine/cli.py: SIGHUP -> reload flows
    # ProtectSystem=strict leaves only the state directory writable: the spool must be there.
    env = dict(e.split("=", 1) for e in service["Environment"])
    (state,) = service["StateDirectory"]
    assert service["ProtectSystem"] == ["strict"]
    assert env["SAMBUNG_ENGINE__SPOOL_DIR"].startswith(f"/var/lib/{state}/")
    assert service["NoNewPrivileges"] == ["yes"]


def test_the_hot_standby_template_unit_is_the_single_unit_with_a_lease_per_instance() -> None:
    """sambung@.service runs one engine of a hot standby pair per instance name; it must not
    drift from sambung.service: the same user, start, stop and hardening."""
    single = parse_unit(UNIT.read_text())["Service"]
    pair = parse_unit((OPS / "systemd" / "sambung@.service").read_text())["Service"]
    env = dict(e.split("=", 1) for e in pair["Environment"])
    assert env["SAMBUNG_ENGINE__INSTANCE_ID"] == "%i"
    assert env["SAMBUNG_ENGINE__LEASE"] == "true"
    assert env["SAMBUNG_ENGINE__SPOOL_DIR"] == "/var/lib/sambung/%i"
    assert pair["StateDirectory"] == ["sambung sambung/%i"]
    assert pair["EnvironmentFile"] == ["/etc/sambung/sambung.env", "/etc/sambung/%i.env"]
    # A fenced engine exits 75: on-failure starts it again, as a standby.
    assert pair["Restart"] == ["on-failure"]
    same = {k: v for k, v in single.items() if k not in ("Environment", "EnvironmentFile")}
    same.pop("StateDirectory")
    same.pop("RestartSec")
    for key, value in same.items():
        assert pair.get(key) == value, key
    # Its settings parse with an instance id of the form systemd passes.
    EngineSettings(instance_id="sambung-2", lease=True)


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: the strict parse above stands alone")
    # verify checks that ExecStart exists, so the copy runs a stand-in at a path that does.
    stub = tmp_path / "sambung"
    stub.write_text("#!/bin/sh\n")
    stub.chmod(0o755)
    copy = tmp_path / "sambung.service"
    copy.write_text(UNIT.read_text().replace("/opt/sambung/venv/bin/sambung", str(stub)))
    r = run(analyze, "verify", str(copy))
    output = (r.stdout + r.stderr).strip()
    assert r.returncode == 0, output
    assert not output, output


# ---- Compose ----------------------------------------------------------------------------------

SERVICES = {"postgres", "asterisk", "sambung", "sambung-standby", "prometheus", "grafana"}
SECRET_WORDS = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|PRIVATE", re.I)


def compose_validator() -> list[str]:
    docker = shutil.which("docker")
    if docker and run(docker, "compose", "version").returncode == 0:
        return [docker, "compose"]
    return [tool("docker-compose")]


def test_compose_config_is_valid() -> None:
    r = run(*compose_validator(), "-f", str(COMPOSE), "config", "-q", cwd=COMPOSE_DIR)
    assert r.returncode == 0, r.stdout + r.stderr


def test_compose_services_are_complete_and_healthchecked() -> None:
    services = compose()["services"]
    assert set(services) == SERVICES
    for name, s in services.items():
        assert "image" in s, f"{name}: name its image"
        assert s.get("healthcheck", {}).get("test"), f"{name}: no healthcheck"
        assert s.get("restart") == "unless-stopped", name
        for dep, how in s.get("depends_on", {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            assert how["condition"] == "service_healthy", f"{name} -> {dep}"
            assert services[dep].get("healthcheck"), f"{name} waits on {dep}'s health"
    assert services["sambung"]["depends_on"].keys() == {"postgres", "asterisk"}
    # The hot standby: opt-in, its own instance id and port, the lease on for both engines.
    standby = services["sambung-standby"]
    assert standby["profiles"] == ["standby"]
    assert standby["environment"]["SAMBUNG_ENGINE__INSTANCE_ID"] != "sambung-1"
    assert standby["environment"]["SAMBUNG_HTTP__PORT"] != "8480"
    assert "lease = true" in (COMPOSE_DIR / "config" / "sambung.toml").read_text()
    drain = EngineSettings().drain_timeout_seconds
    assert seconds(services["sambung"]["stop_grace_period"]) >= drain + 30
    for pinned in ("postgres", "prometheus", "grafana"):
        image = services[pinned]["image"]
        assert ":" in image, f"{pinned}: pin {image}"
        assert not image.endswith(":latest"), f"{pinned}: pin {image}"


def test_compose_holds_no_plaintext_secret() -> None:
    data = compose()
    declared = data.get("secrets", {})
    for name, s in data["services"].items():
        env = s.get("environment", {})
        assert isinstance(env, dict), f"{name}: environment as a mapping"
        for key, value in env.items():
            if SECRET_WORDS.search(key):
                assert key.endswith("_FILE"), f"{name}: {key} must come from a secret file"
                assert str(value).startswith("/run/secrets/"), f"{name}: {key}={value}"
            assert not re.search(r"://[^/\s:@]+:[^/\s@]+@", str(value)), f"{name}: {key}"
        assert "env_file" not in s, f"{name}: secrets go through compose secrets"
        for ref in s.get("secrets", []):
            source = ref if isinstance(ref, str) else ref["source"]
            assert source in declared, f"{name}: secret {source} is not declared"
    ignored = (COMPOSE_DIR / ".gitignore").read_text().split()
    for name, secret in declared.items():
        assert secret["file"].startswith("./secrets/"), name
        assert "secrets/" in ignored, "ops/compose/secrets/ must be ignored by git"
    tracked = run("git", "ls-files", "ops/compose/secrets").stdout.strip()
    assert not tracked, f"secret files are committed: {tracked}"


def test_compose_references_resolve() -> None:
    data = compose()
    volumes = set(data.get("volumes", {}))
    networks = set(data.get("networks", {}))
    for name, s in data["services"].items():
        for v in s.get("volumes", []):
            source = interpolate(v).split(":")[0]
            if source.startswith((".", "/")):
                assert (COMPOSE_DIR / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in volumes, f"{name}: volume {source} is not declared"
        for net in s.get("networks", []):
            assert net in networks, f"{name}: network {net} is not declared"
        assert s.get("network_mode") == "host", f"{name}: the layout shares the host network"
        build = s.get("build")
        if build:
            context = (COMPOSE_DIR / build["context"]).resolve()
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            assert dockerfile.is_file(), f"{name}: {dockerfile}"
            for source in copy_sources(dockerfile):
                assert (context / source).exists(), f"{name}: COPY {source}: not in the context"


def copy_sources(dockerfile: Path) -> list[str]:
    sources = []
    for line in dockerfile.read_text().replace("\\\n", " ").splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            sources += [w for w in words[1:-1] if not w.startswith("--")]
    return sources


def test_prometheus_reads_its_token_where_compose_mounts_it() -> None:
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "sambung"]
    token_path = job["authorization"]["credentials_file"]
    prometheus = compose()["services"]["prometheus"]
    targets = [s["target"] for s in prometheus["secrets"] if isinstance(s, dict)]
    assert token_path in targets
    mounts = binds(prometheus)
    config_arg = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    folder, _, name = config_arg.split("=", 1)[1].rpartition("/")
    assert mounts[folder] / name == (PROM / "prometheus.yml").resolve()
    # The engine's default HTTP port is what Prometheus scrapes.
    (static,) = job["static_configs"]
    assert static["targets"] == ["127.0.0.1:8480"]


def test_prometheus_scrapes_with_a_metrics_token_not_an_admin_token() -> None:
    """An admin token in Prometheus's hands could create users: the scrape token has the
    metrics role, which reads /metrics and nothing else."""
    services = compose()["services"]
    prometheus = services["prometheus"]
    sources = {s if isinstance(s, str) else s["source"] for s in prometheus["secrets"]}
    assert sources == {"sambung_metrics_token"}
    assert "sambung_metrics_token" in services["sambung"]["secrets"]
    entrypoint = (COMPOSE_DIR / "sambung" / "entrypoint.sh").read_text()
    # The engine reads the very file Prometheus is given (the NAME_FILE form).
    assert "from_file SAMBUNG_METRICS_TOKEN /run/secrets/sambung_metrics_token" in entrypoint
    assert "sambung_metrics_token" in (COMPOSE_DIR / "make-secrets").read_text()
    unit = (ROOT / "ops" / "systemd" / "sambung.service").read_text()
    assert "SAMBUNG_METRICS_TOKEN=" in unit


def test_entrypoint_scripts_parse() -> None:
    scripts = [*COMPOSE_DIR.glob("*/entrypoint.sh"), COMPOSE_DIR / "make-secrets"]
    assert len(scripts) == 3
    for script in scripts:
        shell = "bash" if script.read_text().startswith("#!/usr/bin/env bash") else "sh"
        r = run(shell, "-n", str(script))
        assert r.returncode == 0, f"{script.name}: {r.stderr}"
        assert os.access(script, os.X_OK), f"{script.name} is not executable"


ASTERISK_CONF = ROOT / "asterisk" / "conf"
ASTERISK_ENTRYPOINT = COMPOSE_DIR / "asterisk" / "entrypoint.sh"


def conf_value(path: Path, key: str) -> str:
    """The value of ``key=`` in an Asterisk config file's [general] section."""
    section = None
    for line in path.read_text().splitlines():
        line = line.split(";", 1)[0].strip()
        if line.startswith("["):
            section = line
        elif section == "[general]" and line.partition("=")[0].strip() == key:
            return line.partition("=")[2].strip()
    raise AssertionError(f"{path.name}: no {key}= in [general]")


def test_ari_and_ami_bind_to_an_address_of_their_own_on_loopback() -> None:
    """ARI and AMI carry full call control with plain-text credentials: they bind to their own
    address, not SIP's, and both the sandbox and the compose image keep it on loopback."""
    assert conf_value(ASTERISK_CONF / "http.conf", "bindaddr") == "${SAMBUNG_ARI_BIND_ADDR}"
    assert conf_value(ASTERISK_CONF / "manager.conf", "bindaddr") == "${SAMBUNG_AMI_BIND_ADDR}"
    env = compose()["services"]["asterisk"]["environment"]
    assert env["ASTERISK_ARI_BIND_ADDR"] == "127.0.0.1"
    assert env["ASTERISK_AMI_BIND_ADDR"] == "127.0.0.1"
    entrypoint = ASTERISK_ENTRYPOINT.read_text()
    assert 'SAMBUNG_ARI_BIND_ADDR="${ASTERISK_ARI_BIND_ADDR:-127.0.0.1}"' in entrypoint
    assert 'SAMBUNG_AMI_BIND_ADDR="${ASTERISK_AMI_BIND_ADDR:-127.0.0.1}"' in entrypoint
    sandbox = (OPS / "sandbox").read_text()
    for name in ("SAMBUNG_ARI_BIND_ADDR", "SAMBUNG_AMI_BIND_ADDR"):
        assert f'"{name}"' in sandbox, f"ops/sandbox does not render {name}"
    assert "for n in SAMBUNG_SANDBOX_ADDR SAMBUNG_ARI_BIND_ADDR SAMBUNG_AMI_BIND_ADDR" in sandbox


def _loopback_check(address: str) -> int:
    """Runs the compose image's own loopback test on ``address``; its exit status."""
    entrypoint = ASTERISK_ENTRYPOINT.read_text()
    start = entrypoint.index("loopback() {")
    function = entrypoint[start : entrypoint.index("\n}\n", start) + 3]
    return run("sh", "-c", f'{function}\nloopback "$1"', "sh", address).returncode


@pytest.mark.parametrize(
    ("address", "ok"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("0.0.0.0", False), ("10.0.0.5", False)],
)
def test_the_compose_image_refuses_ari_and_ami_beyond_loopback(address: str, ok: bool) -> None:
    assert (_loopback_check(address) == 0) is ok


def sip_password_variables() -> set[str]:
    names: set[str] = set()
    for f in ASTERISK_CONF.glob("*.conf"):
        names |= set(re.findall(r"\$\{SAMBUNG_SIP_PASSWORD_([A-Z0-9_]+)\}", f.read_text()))
    return names


def test_no_sip_password_is_fixed_in_the_shipped_asterisk_config() -> None:
    """Whoever registers with a phone's password takes that phone (and a supervisor's listen
    and whisper calls): every password in the config the compose image renders comes from a
    variable, never a fixed value."""
    for f in ASTERISK_CONF.glob("*.conf"):
        for line in f.read_text().splitlines():
            key, _, value = line.split(";", 1)[0].partition("=")
            if key.strip() in {"password", "secret"}:
                assert re.fullmatch(r"\$\{SAMBUNG_[A-Z0-9_]+\}", value.strip()), (
                    f"{f.name}: fixed {key.strip()}= {value.strip()!r}"
                )
    assert {"AGENT1001", "SUPERVISOR1", "TRUNK"} <= sip_password_variables()


def test_compose_mounts_a_generated_secret_for_every_sip_password() -> None:
    data = compose()
    mounted = set(data["services"]["asterisk"]["secrets"])
    make_secrets = (COMPOSE_DIR / "make-secrets").read_text()
    for name in sip_password_variables():
        secret = f"sip_password_{name.lower()}"
        assert secret in data["secrets"], f"compose.yaml declares no secret {secret}"
        assert secret in mounted, f"the asterisk service does not mount {secret}"
        assert secret in make_secrets, f"make-secrets does not generate {secret}"
    assert "/run/secrets/sip_password_*" in ASTERISK_ENTRYPOINT.read_text()


def test_make_secrets_writes_every_compose_secret_once(tmp_path: Path) -> None:
    script = tmp_path / "make-secrets"
    shutil.copy(COMPOSE_DIR / "make-secrets", script)
    first = run("bash", str(script), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    values = {n: (tmp_path / "secrets" / n).read_text() for n in compose()["secrets"]}
    assert all(len(v) == 32 for v in values.values()), "every compose secret is generated"
    assert len(set(values.values())) == len(values), "each secret is its own"
    again = run("bash", str(script), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout == "", "existing secrets are kept"
    assert (tmp_path / "secrets" / "ari_password").read_text() == values["ari_password"]


NGINX = OPS / "nginx" / "sambung.conf"


def nginx_locations(text: str) -> dict[str, str]:
    """location pattern -> its block's text (the example has no nested blocks)."""
    out = {}
    for m in re.finditer(r"location\s+(?:=|~)?\s*(\S+)\s*\{([^}]*)\}", text):
        out[m.group(1)] = m.group(2)
    return out


def test_the_nginx_example_terminates_tls_and_streams_unbuffered() -> None:
    text = NGINX.read_text()
    assert re.search(r"listen 443 ssl;", text)
    assert "ssl_certificate " in text
    assert "ssl_certificate_key " in text
    # The first hop replaces X-Forwarded-For, so a client's own claim never reaches the engine.
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in text
    assert "$proxy_add_x_forwarded_for" not in text
    assert "proxy_set_header Upgrade $http_upgrade;" in text
    locations = nginx_locations(text)
    streams = ["/console/agent/stream", "/console/wallboard/stream", "/api/v1/agents/siti/events"]
    for path in streams:
        matching = [p for p in locations if p.startswith("^") and re.fullmatch(p, path)]
        assert matching, f"no location for {path}"
        assert "proxy_buffering off;" in locations[matching[0]], path
    assert "return 404" in locations["/metrics"]
    # What the example tells the engine, the engine accepts.
    assert 'trusted_proxies = ["127.0.0.1"]' in text
    assert "cookie_secure = true" in text


def test_the_operations_guide_has_a_security_section() -> None:
    doc = OPERATIONS_DOC.read_text()
    section = doc[doc.index("\n## Security\n") : doc.index("\n## Backups\n")]
    for word in (
        "carrier trunk",
        "desk phones",
        "agents",
        "supervisors",
        "the network",
        "the database",
        "ops/nginx/sambung.conf",
        "trusted_proxies",
        "cookie_secure",
        "media_encryption=sdes",
        "transport-tls",
        "tlsenable=yes",
        "ivr_sessions.attributes",
        "digits_retention_days",
    ):
        assert word in section, f"the Security section does not mention {word!r}"
