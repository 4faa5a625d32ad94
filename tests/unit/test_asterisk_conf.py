"""The Asterisk config we ship: the benchmarks' native extensions are sandbox-only.

``asterisk/conf/*.conf`` is what production installs (ops/compose renders exactly those);
``asterisk/conf/sandbox/*.conf`` only ops/sandbox installs, pulled in by ``#tryinclude``. The
dialplan is read as Asterisk reads it (sections, ``exten``/``same`` lines, ``include``,
``Goto``/``GotoIf``/``Gosub``, ``Local/...@context``), and every context an endpoint lands in
must have no path to the benchmark contexts, in production and in the sandbox alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "asterisk" / "conf"
SANDBOX = CONF / "sandbox"
BENCH_CONTEXTS = {"sandbox-bench", "native-bench", "native-ivr", "native-queue"}
BENCH_EXTENSIONS = {"7000", "7100", "7200"}
# Contexts no endpoint lands in: entered only by an originate the engine or ops/sandbox makes.
ORIGINATE_ONLY = {"dialer-amd", "sambung-selftest"}

Sections = dict[str, list[tuple[str, str]]]


def production_files() -> list[Path]:
    return sorted(CONF.glob("*.conf"))


def sandbox_files() -> list[Path]:
    return sorted(SANDBOX.glob("*.conf"))


def sections(files: Iterable[Path], name: str) -> Sections:
    """``[section]`` -> its ``key = value`` lines (templates merged in), from every file
    called ``name`` or (sandbox) ``sambung-sandbox-<name>``; comments and directives out."""
    out: Sections = {}
    templates: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for f in files:
        if f.name not in (name, f"sambung-sandbox-{name}"):
            continue
        for raw in f.read_text().splitlines():
            line = raw.split(";", 1)[0].strip()
            if not line or line.startswith("#"):
                continue
            m = re.fullmatch(r"\[([^\]]+)\](\((.*)\))?", line)
            if m:
                sec, opts = m.group(1), (m.group(3) or "")
                current = []
                for parent in (o.strip() for o in opts.split(",")):
                    if parent and parent != "!":
                        current.extend(templates.get(parent, []))
                if opts.strip() == "!":
                    templates[sec] = current
                else:
                    out.setdefault(sec, []).extend(current)
                    current = out[sec]
                continue
            key, sep, value = line.partition("=>") if "=>" in line else line.partition("=")
            if sep and current is not None:
                current.append((key.strip().lower(), value.strip()))
    return out


def endpoint_contexts(pjsip: Sections) -> dict[str, str]:
    """Endpoint name -> the context its calls land in."""
    out: dict[str, str] = {}
    for sec, lines in pjsip.items():
        if ("type", "endpoint") in lines:
            ctx = [v for k, v in lines if k == "context"]
            out[sec] = ctx[-1] if ctx else "default"
    return out


def identify_matches(pjsip: Sections) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for lines in pjsip.values():
        if ("type", "identify") in lines:
            ep = next(v for k, v in lines if k == "endpoint")
            out.setdefault(ep, []).extend(v for k, v in lines if k == "match")
    return out


_LABELLED = re.compile(r"\b(Goto|Gosub|GotoIf|GosubIf|GotoIfTime|ExecIf)\((.*)\)", re.I)
_LOCAL = re.compile(r"Local/[^@,)&]+@([^,/)&]+)", re.I)


def targets(context: str, app_line: str) -> set[str]:
    """The contexts one dialplan line can send a call to (``context`` itself excluded).

    A target context that is not a plain name (a variable) comes back as ``?``: unknown, so
    the reachability test fails rather than guess."""
    found: set[str] = set()
    for local in _LOCAL.finditer(app_line):
        found.add(local.group(1))
    m = _LABELLED.search(app_line)
    if m:
        app, args = m.group(1).lower(), m.group(2)
        if app in ("gotoif", "gosubif", "gotoiftime", "execif"):
            _, _, args = args.rpartition("?")
        for label in args.split(":"):
            parts = [p.strip() for p in label.split("(", 1)[0].split(",")]
            if len(parts) == 3:
                found.add(parts[0] if re.fullmatch(r"[A-Za-z0-9_-]+", parts[0]) else "?")
    found.discard(context)
    return found


def dialplan(files: Iterable[Path]) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(context -> contexts it can reach in one step, context -> its extensions)."""
    edges: dict[str, set[str]] = {}
    extens: dict[str, set[str]] = {}
    for ctx, lines in sections(files, "extensions.conf").items():
        if ctx in ("general", "globals"):
            continue
        edges.setdefault(ctx, set())
        extens.setdefault(ctx, set())
        for key, value in lines:
            if key == "include":
                edges[ctx].add(value.split(",")[0].strip())
            elif key in ("exten", "same"):
                if key == "exten":
                    extens[ctx].add(value.split(",", 1)[0].strip())
                edges[ctx] |= targets(ctx, value)
    return edges, extens


def reachable(start: str, edges: dict[str, set[str]]) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for t in edges.get(todo.pop(), set()):
            if t not in seen:
                seen.add(t)
                todo.append(t)
    return seen


def test_the_reader_sees_what_a_dialplan_can_do() -> None:
    assert targets("a", "1,Goto(native-bench,${EXTEN},1)") == {"native-bench"}
    assert targets("a", "n,GotoIf($[${X} = 1]?b,s,1:c,s,1)") == {"b", "c"}
    assert targets("a", "n,GotoIf($[${X} = 1]?engine-down)") == set()
    assert targets("a", "n,Gosub(sub-x,s,1(arg))") == {"sub-x"}
    assert targets("a", "n,Dial(Local/7000@native-bench/n)") == {"native-bench"}
    assert targets("a", "n,Goto(${CTX},s,1)") == {"?"}
    assert targets("a", "n,Stasis(sambung,inbound,${EXTEN})") == set()


@pytest.mark.parametrize("with_sandbox", [False, True], ids=["production", "sandbox"])
def test_no_production_endpoint_reaches_a_benchmark_context(with_sandbox: bool) -> None:
    files = production_files() + (sandbox_files() if with_sandbox else [])
    edges, extens = dialplan(files)
    contexts = endpoint_contexts(sections(files, "pjsip.conf"))
    production = {ep: ctx for ep, ctx in contexts.items() if ctx not in BENCH_CONTEXTS}
    assert {"trunk", "customers", "agent1001"} <= set(production)
    assert production["trunk"] == "from-trunk"
    for endpoint, ctx in sorted(production.items()):
        assert ctx in edges, f"endpoint {endpoint} lands in {ctx}, which the dialplan lacks"
        for start in (ctx, *sorted(ORIGINATE_ONLY)):
            seen = reachable(start, edges)
            assert "?" not in seen, f"{start} jumps to a context computed at run time"
            assert not seen & BENCH_CONTEXTS, f"{endpoint}: {start} reaches {seen & BENCH_CONTEXTS}"
            exact = set().union(*(extens.get(c, set()) for c in seen))
            assert not exact & BENCH_EXTENSIONS, f"{start} has {exact & BENCH_EXTENSIONS}"


def test_the_production_config_has_no_benchmark_context_endpoint_or_queue() -> None:
    files = production_files()
    edges, _ = dialplan(files)
    assert not set(edges) & BENCH_CONTEXTS
    assert "bench" not in endpoint_contexts(sections(files, "pjsip.conf"))
    assert "native-bench" not in sections(files, "queues.conf")
    lines = [raw.split(";", 1)[0].strip() for f in files for raw in f.read_text().splitlines()]
    # The only way in is a #tryinclude of a file that only ops/sandbox installs.
    directives = [line for line in lines if line.startswith("#")]
    included = {line.split(None, 1)[1].strip('"') for line in directives}
    assert all(line.startswith("#tryinclude ") for line in directives), directives
    assert included == {f.name for f in sandbox_files()}
    assert not any((ROOT / "asterisk" / "conf" / name).exists() for name in included)
    settings = "\n".join(line for line in lines if not line.startswith("#"))
    for word in (*BENCH_CONTEXTS, ":5075"):
        assert word not in settings, word


def test_the_sandbox_bench_endpoint_is_apart_from_the_trunks() -> None:
    files = production_files() + sandbox_files()
    pjsip = sections(files, "pjsip.conf")
    contexts = endpoint_contexts(pjsip)
    assert contexts["bench"] == "sandbox-bench"
    assert [ep for ep, ctx in contexts.items() if ctx in BENCH_CONTEXTS] == ["bench"]
    matches = identify_matches(pjsip)
    assert matches["bench"] == ["${SAMBUNG_SANDBOX_ADDR}:5075"]
    others = {m for ep, ms in matches.items() if ep != "bench" for m in ms}
    assert not others & set(matches["bench"])
    _, extens = dialplan(files)
    assert extens["sandbox-bench"] >= BENCH_EXTENSIONS


def test_no_engine_code_names_a_benchmark_context() -> None:
    for f in (ROOT / "sambung").rglob("*.py"):
        text = f.read_text()
        for ctx in BENCH_CONTEXTS:
            assert ctx not in text, f"{f.relative_to(ROOT)} names {ctx}"
