"""Engines that die and come back, and callers who wait through it: the pieces shared by
tests/integration/test_adoption.py and bench/adoption.py.

The engine runs as ``sambung run``, a process of its own, so it can be killed by its PID like a
crashed or deployed engine; callers are one SIPp on the carrier trunk placing several calls
that wait until the far end hangs up; the agent is a SIPp desk phone. Loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from tests.integration.callers import Step, write_scenario
from tests.integration.harness import ROOT, ari_get
from tests.integration.phones import AgentPhone, Answer

R = TypeVar("R")

DID = "1600"
QUEUE = "support"
TOKEN = "adoption-token-0123456789abcdef"
AGENT = ("siti", "agent1001", "a1001", 5091)  # id, endpoint, password, phone's SIP port
# More agents for floors with talks going on (bench/failover.py).
MORE_AGENTS = (("budi", "agent1002", "a1002", 5092), ("made", "agent1003", "a1003", 5093))

CONFIG = """
[engine]
instance_id = "{instance}"
log_format = "json"
log_level = "info"
spool_dir = "{spool}"
drain_timeout_seconds = 5
on_stop = "{on_stop}"
lease = {lease}
lease_ttl_seconds = {lease_ttl}
lease_renew_seconds = {lease_renew}
[http]
port = {port}
api_tokens = ["{token}"]
[database]
url = "{db}"
retry_max_seconds = 0.5
[ari]
backoff_initial_seconds = 0.2
backoff_max_seconds = 2.0
[ami]
enabled = false
[[hotlines]]
did = "{did}"
name = "Adoption queue"
queue = "{queue}"
[acd]
adopt_within_seconds = {adopt_within}
[[acd.queues]]
name = "{queue}"
announce_every_seconds = 20
ring_timeout_seconds = 10
wrap_up_seconds = {wrap_up}
max_wait_seconds = 900
[[acd.agents]]
id = "{agent}"
name = "Siti"
endpoint = "{endpoint}"
pin = "1001"
queues = ["{queue}"]
"""
AGENT_CONFIG = """
[[acd.agents]]
id = "{agent}"
name = "{name}"
endpoint = "{endpoint}"
pin = "1001"
queues = ["{queue}"]
"""


# A hotline flow for callers who outlive the engine in the IVR (test_ivr_resume.py,
# bench/ivr_resume.py): a language menu, an account number, then a menu with a 30 s prompt.
IVR_DID = "1503"
# Stock sounds, and the sandbox's own for the language menu (made in both languages).
IVR_FLOW = """
flow: resume
dids: ["{did}"]
languages: [id, en]
default_language: id
start: language
nodes:
  language:
    type: menu
    prompts: [sambung/choose-language]
    options: {{"1": set_id, "2": set_en}}
    timeout: 5
    retry: {{attempts: 3, no_input: [vm-sorry], invalid: [vm-sorry], on_failure: set_id}}
  set_id: {{type: set, values: {{language: id}}, next: account}}
  set_en: {{type: set, values: {{language: en}}, next: account}}
  account:
    type: input
    prompts: [vm-enter-num-to-call]
    store_as: account
    min_length: 4
    max_length: 10
    terminator: "#"
    first_digit_timeout: 8
    inter_digit_timeout: 3
    pattern: "[0-9]+"
    retry: {{attempts: 3, no_input: [vm-sorry], invalid: [vm-sorry], on_failure: goodbye}}
    next: main
  main:
    type: menu
    # 30 s: the engine goes while it plays, and the resumed menu must not wait for its end.
    prompts: [demo-congrats]
    options: {{"1": known}}
    timeout: 20
    retry: {{attempts: 2, no_input: [vm-sorry], invalid: [vm-sorry], on_failure: goodbye}}
  known:
    type: hangup
    prompts: [vm-goodbye]
    reason: resumed_menu_option
  goodbye:
    type: hangup
    prompts: [vm-goodbye]
    reason: max_attempts
"""


def ivr_flow_config(work: Path) -> str:
    """The ``[ivr]`` settings for the flow above, its file written into ``work``."""
    path = work / "resume.yaml"
    path.write_text(IVR_FLOW.format(did=IVR_DID))
    return f'\n[ivr]\nflows = ["{path}"]\n'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def proc_engines(work: Path, spec: dict[str, Any], port: int) -> tuple[Engine, Engine]:
    """A first engine and the one after it, each a process of tests/integration/engine_proc.py
    from the same settings sections (``spec``, with ``database_url``), serving ``port``: so
    that a test can SIGKILL the first by its PID. Logs in ``first.log`` and ``second.log``."""
    spec_file = work / "engine.json"
    spec_file.write_text(json.dumps(spec, default=str))
    argv = [sys.executable, "-m", "tests.integration.engine_proc", str(spec_file)]
    first = Engine(spec_file, port, work / "first.log", argv=argv)
    second = Engine(spec_file, port, work / "second.log", argv=argv)
    return first, second


def write_config(
    work: Path,
    db_url: str,
    *,
    instance: str = "adoption",
    adopt_within: float = 120,
    on_stop: str = "handover",
    lease: bool = False,
    lease_ttl: float = 4.0,
    lease_renew: float = 1.0,
    name: str = "engine",
    more_agents: int = 0,
    wrap_up: float = 0,
    extra: str = "",
) -> tuple[Path, int]:
    """The engine's settings file (``name``.toml); returns it and the HTTP port it serves.
    With ``lease``, engines with distinct instance ids form a hot standby. ``extra``: more
    TOML, appended (an ``[ivr]`` section...)."""
    port = free_port()
    path = work / f"{name}.toml"
    path.write_text(
        CONFIG.format(
            instance=instance,
            spool=work / f"spool-{instance}",
            on_stop=on_stop,
            lease="true" if lease else "false",
            lease_ttl=lease_ttl,
            lease_renew=lease_renew,
            port=port,
            token=TOKEN,
            db=db_url,
            did=DID,
            queue=QUEUE,
            adopt_within=adopt_within,
            agent=AGENT[0],
            endpoint=AGENT[1],
            wrap_up=wrap_up,
        )
        + "".join(
            AGENT_CONFIG.format(agent=a, name=a.title(), endpoint=ep, queue=QUEUE)
            for a, ep, _, _ in MORE_AGENTS[:more_agents]
        )
        + extra
    )
    return path, port


def readiness(port: int) -> dict[str, Any] | None:
    """The engine's /ready body (a standby answers 503 with its role), None if no answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as r:
            body: dict[str, Any] = json.loads(r.read())
            return body
    except urllib.error.HTTPError as err:
        try:
            answer: dict[str, Any] = json.loads(err.read())
        except ValueError:
            return None
        return answer
    except OSError:
        return None


def _ready(port: int, role: str = "active") -> bool:
    body = readiness(port)
    if body is None:
        return False
    if role == "standby":
        return body.get("role") == "standby"
    return bool(body.get("ready"))


@dataclass
class Engine:
    """One ``sambung run`` process; its log (JSON lines) is appended to ``log``."""

    config: Path
    port: int
    log: Path
    proc: asyncio.subprocess.Process | None = None
    started_at: float = 0.0  # wall clock, when the process was started
    # The command, when not ``sambung run`` with ``config`` (e.g. tests/integration/engine_proc.py).
    argv: list[str] | None = None

    async def start(self, timeout: float = 40, role: str = "active") -> asyncio.subprocess.Process:
        """Start ``sambung run`` and wait until it is ready as ``role`` ("standby": alive and
        waiting for the lease)."""
        fd = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            self.started_at = time.time()
            argv = self.argv or [str(Path(sys.executable).parent / "sambung"), "run"]
            self.proc = await asyncio.create_subprocess_exec(
                *argv,
                env={**os.environ, "SAMBUNG_CONFIG": str(self.config)},
                cwd=ROOT,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=fd,
                stderr=fd,
            )
        finally:
            os.close(fd)
        deadline = time.monotonic() + timeout
        while not await asyncio.to_thread(_ready, self.port, role):
            if self.proc.returncode is not None or time.monotonic() > deadline:
                raise AssertionError(f"the engine did not get ready; its log:\n{self.tail()}")
            await asyncio.sleep(0.1)
        return self.proc

    def tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""

    async def kill(self) -> None:
        """SIGKILL by its PID: no shutdown, no hand-over, nothing flushed; a crash."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        assert await self.proc.wait() == -signal.SIGKILL

    async def terminate(self, timeout: float = 60) -> int:
        """SIGTERM by its PID: the staged shutdown (a deploy); its exit status."""
        assert self.proc is not None
        if self.proc.returncode is not None:
            return self.proc.returncode
        self.proc.terminate()
        return await asyncio.wait_for(self.proc.wait(), timeout)

    def metric(self, name: str) -> float | None:
        """One sample's value from /metrics (``name`` with its labels as printed), or None."""
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/metrics")
        req.add_header("Authorization", f"Bearer {TOKEN}")
        with urllib.request.urlopen(req, timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[-1])
        return None

    def api(self, method: str, path: str) -> Any:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            method=method,
            data=b"" if method == "POST" else None,
        )
        req.add_header("Authorization", f"Bearer {TOKEN}")
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read() or b"null")

    async def aapi(self, method: str, path: str) -> Any:
        return await asyncio.to_thread(self.api, method, path)

    async def waiting(self) -> int:
        queues = await self.aapi("GET", "/api/v1/queues")
        return sum(int(q["waiting"]) for q in queues["queues"] if q["queue"] == QUEUE)

    def events(self, *names: str, since: float = 0.0) -> list[tuple[float, dict[str, Any]]]:
        """This engine's log lines named ``names`` (wall-clock time, the line), in order."""
        out: list[tuple[float, dict[str, Any]]] = []
        if not self.log.exists():
            return out
        for line in self.log.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if data.get("event") in names and "timestamp" in data:
                at = datetime.fromisoformat(data["timestamp"].replace("Z", "+00:00"))
                if at.timestamp() >= since:
                    out.append((at.timestamp(), data))
        return out


@dataclass
class Callers:
    """One SIPp on the carrier trunk placing ``calls`` calls, one every ``every`` seconds, each
    answered and then waiting (music, announcements) until the far end hangs up."""

    work: Path
    calls: int
    every: float = 0.5
    wait_for_bye: float = 240.0
    # What each caller does once answered (keys, pauses), and the number it calls.
    steps: list[Step] = field(default_factory=list)
    did: str = DID
    proc: asyncio.subprocess.Process | None = None
    output: bytes = b""
    messages: Path = field(init=False)

    def __post_init__(self) -> None:
        self.messages = self.work / "callers-messages.log"

    async def start(self) -> None:
        scenario = write_scenario(
            self.work,
            "waiting-caller",
            self.steps,
            hang_up=False,
            bye_timeout_ms=int(self.wait_for_bye * 1000),
        )
        self.proc = await asyncio.create_subprocess_exec(
            "sipp",
            *("-sf", str(scenario), "-s", self.did, "127.0.0.1:5060"),
            *("-i", "127.0.0.1", "-p", "5070"),
            *("-m", str(self.calls), "-l", str(self.calls)),
            *("-r", "1", "-rp", str(int(self.every * 1000))),
            *("-timeout", f"{int(self.wait_for_bye + 60)}s", "-timeout_error", "-nostdin"),
            *("-trace_msg", "-message_file", str(self.messages), "-trace_err"),
            cwd=self.work,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )

    async def finish(self, timeout: float) -> int:
        """Wait until every call ended; SIPp's exit status (0: all went as the scenario says)."""
        assert self.proc is not None
        out, _ = await asyncio.wait_for(self.proc.communicate(), timeout)
        self.output = out
        return self.proc.returncode if self.proc.returncode is not None else -1

    async def stop(self) -> None:
        """Never leave a SIPp behind on the trunk's port (its PID only)."""
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


def place_on(channel_id: str) -> str:
    """The place written on a channel (Asterisk's own view), "" when there is none."""
    try:
        return str(ari_get(f"/channels/{channel_id}/variable?variable=SAMBUNG_PLACE")["value"])
    except OSError:
        return ""


def kendall_tau(order: list[str], reference: Iterable[str]) -> float:
    """Kendall's tau-a between ``order`` and ``reference`` over the items both hold: 1.0 when
    every pair is in the same order, -1.0 when every pair is reversed."""
    rank = {x: i for i, x in enumerate(reference)}
    items = [x for x in order if x in rank]
    n = len(items)
    if n < 2:
        return 1.0
    concordant = discordant = 0
    for i in range(n):
        for j in range(i + 1, n):
            if rank[items[i]] < rank[items[j]]:
                concordant += 1
            else:
                discordant += 1
    return (concordant - discordant) / (n * (n - 1) / 2)


# An agent who answers at once and hangs up 0.2 s later: serves a queue as fast as it can.
QUICK_ANSWER = Answer(ring=0.0, hang_up_after=0.2)


async def staff(
    engine: Engine,
    stack: AsyncExitStack,
    work: Path,
    agent: tuple[str, str, str, int] = AGENT,
    *,
    calls: int,
    answer: Answer = QUICK_ANSWER,
    timeout: float = 300,
) -> AgentPhone:
    """The agent's SIPp desk phone (closed with ``stack``) registered, taking ``calls`` calls
    as ``answer`` says, and the agent logged in on ``engine`` once the phone is online."""
    aid, endpoint, password, port = agent
    phone = await stack.enter_async_context(
        AgentPhone(endpoint, password, port, workdir=work / aid)
    )
    await phone.register()
    await phone.serve(answer, calls=calls, timeout=timeout)
    deadline = time.monotonic() + 10
    while not (await engine.aapi("GET", f"/api/v1/agents/{aid}"))["phone_online"]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{aid}'s phone did not come online")
        await asyncio.sleep(0.1)
    await engine.aapi("POST", f"/api/v1/agents/{aid}/login")
    return phone


# ---- the benchmarks' rounds (bench/adoption.py, bench/failover.py, bench/ivr_resume.py) ----


async def until(pred: Callable[[], Awaitable[bool]], what: str, timeout: float) -> None:
    """Wait until ``pred`` holds; RuntimeError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await pred():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def engine_pair(work: Path, db_url: str, path: str, **config: Any) -> tuple[Engine, Engine]:
    """The engine that will be killed and the one that takes over: a standby of its own
    (``path`` "standby": ``config`` should ask for the lease), or the same settings started
    again (a restart)."""
    cfg, port = write_config(work, db_url, instance="bench-a", name="a", **config)
    first = Engine(cfg, port, work / "first.log")
    if path == "standby":
        cfg_b, port_b = write_config(work, db_url, instance="bench-b", name="b", **config)
        return first, Engine(cfg_b, port_b, work / "second.log")
    return first, Engine(cfg, port, work / "second.log")


async def start_pair(
    stack: AsyncExitStack, path: str, first: Engine, second: Engine, callers: Callers
) -> None:
    """Start ``first`` (and ``second`` as the standby on that path). When ``stack`` closes,
    the callers' SIPp and both engines are stopped by their PIDs, whatever happened."""

    async def cleanup() -> None:
        await callers.stop()
        for e in (first, second):
            if e.proc is not None and e.proc.returncode is None:
                e.proc.kill()
                await e.proc.wait()

    stack.push_async_callback(cleanup)
    await first.start()
    if path == "standby":
        await second.start(role="standby")


@dataclass(frozen=True)
class Takeover:
    killed: float  # wall clock
    lapsed: float  # the lease's expiry for a standby, the kill for a restart
    ready_s: float  # the kill -> the new engine ready (active)


async def kill_and_take_over(
    path: str, first: Engine, second: Engine, pool: Any, lease_budget: float
) -> Takeover:
    """SIGKILL ``first``; then ``second`` takes over: as the warm standby (``path`` "standby",
    waiting until it is active, within ``lease_budget`` seconds and some) or started afresh
    the moment ``first`` is dead."""
    await first.kill()
    killed = time.time()
    lapsed = killed
    if path == "standby":
        # The expiry the last renewal set, in the database's clock (the same host's).
        expires = await pool.fetchval("SELECT expires_at FROM engine_lease")
        lapsed = max(killed, expires.timestamp())

        async def active() -> bool:
            body = await asyncio.to_thread(readiness, second.port)
            return bool(body and body.get("ready"))

        await until(active, "the standby active", lease_budget + 30)
    else:
        await second.start()
    return Takeover(killed, lapsed, time.time() - killed)


async def bench_rounds(
    name: str,
    paths: list[str],
    rounds: int,
    one_round: Callable[[str, Path], Awaitable[R]],
) -> tuple[list[R], Path]:
    """Every path ``rounds`` times, each in its own folder of a new work folder (kept, for
    the engines' logs); the results in order, and the work folder."""
    work = Path(tempfile.mkdtemp(prefix=f"sambung-bench-{name}-"))
    results = []
    for n in range(rounds):
        for path in paths:
            (work / f"{path}-{n}").mkdir()
            results.append(await one_round(path, work / f"{path}-{n}"))
    return results, work
