"""Agent ready -> INVITE at the agent's phone: Asterisk's own app_queue, and the engine's ACD.

One caller waits in a queue whose only agent is paused; the agent is made ready and the clock
runs until the agent's desk phone (a SIPp phone registered as agent1003) receives the INVITE.
The INVITE's arrival is SIPp's own timestamp in its message log; the start is taken just
before the "ready" request is written. Both read the same wall clock.

- native: extension 7200 (dialled from the sandbox-only ``bench`` endpoint's port) ->
  ``Queue(native-bench)`` (asterisk/conf/sandbox/sambung-sandbox-queues.conf), agent1003 a
  static member; "ready" is the AMI action ``QueuePause Paused=false``. No engine involved.
- engine: DID 1601 -> the engine's queue ``bench``; "ready" is
  ``POST /api/v1/agents/made/ready``. Needs PostgreSQL (DATABASE_URL) for the engine it starts.

Each round: pause the agent, place a caller, wait until the caller is queued, let the queue
settle (``--settle`` plus a random part up to ``--jitter``: app_queue looks for a free member
once per ``retry`` second, so a fixed delay would always catch that cycle at the same phase),
make the agent ready, take the INVITE's time. The phone answers at once and hangs up 0.3 s
later; the caller is then hung up by Asterisk (native) or the engine, and the round ends when
both are gone, so no round inherits a call from the one before.

Run with the sandbox up (ops/sandbox up):

    .venv/bin/python -m bench.agent_ring --only native          # 20 rounds, no engine
    .venv/bin/python -m bench.agent_ring --rounds 15            # both paths, alternating
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from panoramisk import Manager

from bench import NATIVE_SIP_PORT
from bench.first_audio import pct, wait_ready
from tests.integration.callers import Pause, write_scenario
from tests.integration.harness import SippResult, sipp
from tests.integration.phones import AgentPhone, Answer

AGENT = ("agent1003", "a1003", 5093)
# The phone picks up at once and hangs up shortly after: the call is over well before the
# next round, and the measured part (ready -> INVITE) does not depend on it.
PHONE = Answer(ring=0.0, hang_up_after=0.3)
AMI = {"host": "127.0.0.1", "port": 5038, "username": "sambung", "secret": "sambung-dev-ami-secret"}


async def _until(pred: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await pred():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _settle(settle: float, jitter: float) -> None:
    await asyncio.sleep(settle + random.uniform(0.0, jitter))


async def _caller_done(call: asyncio.Task[SippResult], what: str) -> None:
    result = await asyncio.wait_for(call, 45)
    if result.returncode != 0:
        raise RuntimeError(f"{what}: the caller's SIPp failed:\n{result.output[-1500:]}")


# ---- native: Asterisk's app_queue --------------------------------------------------------

NATIVE_EXTEN = "7200"
NATIVE_QUEUE = "native-bench"
NATIVE_MEMBER = "PJSIP/agent1003"


@contextlib.asynccontextmanager
async def ami_session() -> AsyncIterator[Manager]:
    # panoramisk's own pinging and reconnecting are off: a bench run is short, and a lost
    # connection should fail the run, not be papered over.
    ami = Manager(**AMI, ping_delay=0, reconnect_timeout=0)
    await asyncio.wait_for(ami.connect(), 10)
    try:
        yield ami
    finally:
        ami.close()


async def _action(ami: Manager, action: dict[str, str]) -> list[Any]:
    reply = await asyncio.wait_for(ami.send_action(action), 5)
    messages = reply if isinstance(reply, list) else [reply]
    if messages and str(messages[0].get("Response", "")).lower() == "error":
        raise RuntimeError(f"AMI {action['Action']}: {messages[0].get('Message')}")
    return messages


async def native_pause(ami: Manager, paused: bool) -> None:
    await _action(
        ami,
        {
            "Action": "QueuePause",
            "Queue": NATIVE_QUEUE,
            "Interface": NATIVE_MEMBER,
            "Paused": "true" if paused else "false",
            "Reason": "bench",
        },
    )


async def native_waiting(ami: Manager) -> int:
    """Callers waiting in the native queue (AMI QueueSummary)."""
    for m in await _action(ami, {"Action": "QueueSummary", "Queue": NATIVE_QUEUE}):
        if m.get("Event") == "QueueSummary" and m.get("Queue") == NATIVE_QUEUE:
            return int(m.get("Callers", 0))
    return 0


async def native_round(
    ami: Manager, phone: AgentPhone, *, settle: float = 0.5, jitter: float = 1.0
) -> float:
    """One round through app_queue; seconds from the un-pause action to the INVITE."""
    await native_pause(ami, True)
    call = asyncio.create_task(
        sipp("uac_wait_bye.xml", NATIVE_EXTEN, timeout=30, local_port=NATIVE_SIP_PORT)
    )
    try:

        async def queued() -> bool:
            return await native_waiting(ami) == 1

        await _until(queued, 5, "the caller in app_queue")
        await _settle(settle, jitter)
        t0 = time.time()
        await native_pause(ami, False)
        invite = await phone.wait_invite(10, after=t0)
        # The phone hangs up, Queue() returns, the dialplan hangs up the caller.
        await _caller_done(call, "native round")
    finally:
        if not call.done():
            call.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await call
    return invite.at - t0


# ---- engine: the ACD of the engine (its own process, its own database) --------------------

ENGINE_DID = "1601"
TOKEN = "bench-token-0123456789abcdef"
CALLER_HOLD_MS = 2500  # the engine's caller stays this long after being answered, then hangs up

CONFIG = """
[engine]
instance_id = "sambung-bench-acd"
log_format = "json"
log_level = "warning"
spool_dir = "{spool}"
[http]
port = {port}
api_tokens = ["{token}"]
[database]
url = "{db}"
[[hotlines]]
did = "{did}"
name = "Bench queue"
queue = "bench"
[acd]
[[acd.queues]]
name = "bench"
announce_every_seconds = 0
ring_timeout_seconds = 15
wrap_up_seconds = 0
[[acd.agents]]
id = "made"
name = "Made"
endpoint = "agent1003"
pin = "1003"
queues = ["bench"]
"""


class Api:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def call(self, method: str, path: str) -> Any:
        req = urllib.request.Request(
            self.base + path, method=method, data=b"" if method == "POST" else None
        )
        req.add_header("Authorization", f"Bearer {TOKEN}")
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read() or b"null")

    async def acall(self, method: str, path: str) -> Any:
        return await asyncio.to_thread(self.call, method, path)


async def engine_round(
    api: Api, phone: AgentPhone, caller: Path, *, settle: float = 0.5, jitter: float = 1.0
) -> float:
    """One round through the engine; seconds from the ready request to the INVITE."""
    await api.acall("POST", "/api/v1/agents/made/pause")
    call = asyncio.create_task(sipp(caller, ENGINE_DID, timeout=30))
    try:

        async def queued() -> bool:
            queues = await api.acall("GET", "/api/v1/queues")
            return bool(queues["queues"][0]["waiting"] == 1)

        await _until(queued, 5, "the caller in the engine's queue")
        await _settle(settle, jitter)
        t0 = time.time()
        await api.acall("POST", "/api/v1/agents/made/ready")
        invite = await phone.wait_invite(10, after=t0)
        await asyncio.wait_for(call, 45)  # ends by itself; the engine may hang it up first

        async def ready() -> bool:
            return bool((await api.acall("GET", "/api/v1/agents/made"))["state"] == "ready")

        await _until(ready, 5, "the agent ready again")
    finally:
        if not call.done():
            call.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await call
    return invite.at - t0


@contextlib.asynccontextmanager
async def running_engine(work: Path, http_port: int) -> AsyncIterator[Api]:
    """The engine as its own process (as in production), on a fresh database."""
    from tests.dbutil import fresh_database

    async with fresh_database("sambung_bench_acd") as db_url:
        cfg = work / "bench.toml"
        cfg.write_text(
            CONFIG.format(
                spool=work / "spool", port=http_port, db=db_url, did=ENGINE_DID, token=TOKEN
            )
        )
        env = {**os.environ, "SAMBUNG_CONFIG": str(cfg)}
        exe = str(Path(sys.executable).parent / "sambung")
        mig = await asyncio.create_subprocess_exec(
            exe, "migrate", env=env, stdout=asyncio.subprocess.DEVNULL
        )
        if await mig.wait() != 0:
            raise RuntimeError("sambung migrate failed")
        log_fd = os.open(work / "engine.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        engine = await asyncio.create_subprocess_exec(exe, "run", env=env, stderr=log_fd)
        os.close(log_fd)
        try:
            await asyncio.to_thread(wait_ready, http_port, 30)
            yield Api(http_port)
        finally:
            if engine.returncode is None:
                engine.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(engine.wait(), 30)
                except TimeoutError:
                    engine.kill()
                    await engine.wait()


# ---- the run -------------------------------------------------------------------------------


def report(results: dict[str, list[float]], rounds: int) -> None:
    print(f"agent ready -> INVITE at the agent's phone: {rounds} rounds per path, one caller")
    print(f"{'path':<8}{'n':>4}{'p50 ms':>10}{'p99 ms':>10}{'min ms':>10}{'max ms':>10}")
    for label, v in results.items():
        if v:
            print(
                f"{label:<8}{len(v):>4}{pct(v, 0.5) * 1000:>10.1f}{pct(v, 0.99) * 1000:>10.1f}"
                f"{min(v) * 1000:>10.1f}{max(v) * 1000:>10.1f}"
            )
    eng, nat = results.get("engine", []), results.get("native", [])
    if eng and nat:
        print(
            f"ratio engine/native: p50 {pct(eng, 0.5) / pct(nat, 0.5):.3f}x, "
            f"p99 {pct(eng, 0.99) / pct(nat, 0.99):.3f}x"
        )


async def run(args: argparse.Namespace) -> dict[str, list[float]]:
    paths = ["native", "engine"] if args.only is None else [args.only]
    work = Path(tempfile.mkdtemp(prefix="sambung-bench-ring-"))
    results: dict[str, list[float]] = {p: [] for p in paths}
    timing = {"settle": args.settle, "jitter": args.jitter}
    async with contextlib.AsyncExitStack() as stack:
        rounds: dict[str, Callable[[], Awaitable[float]]] = {}
        phone = await stack.enter_async_context(AgentPhone(*AGENT, workdir=work))
        await phone.register()
        # One call per round and path, plus one warm-up round per path.
        calls = len(paths) * (args.rounds + 1)
        await phone.serve(PHONE, calls=calls, timeout=60 + 10 * calls)
        if "native" in paths:
            ami = await stack.enter_async_context(ami_session())
            rounds["native"] = lambda: native_round(ami, phone, **timing)
        if "engine" in paths:
            api = await stack.enter_async_context(running_engine(work, args.http_port))
            caller = write_scenario(work, "caller", [Pause(CALLER_HOLD_MS)], hang_up=True)

            async def online() -> bool:
                return bool((await api.acall("GET", "/api/v1/agents/made"))["phone_online"])

            await _until(online, 10, "the agent's phone online in the engine")
            await api.acall("POST", "/api/v1/agents/made/login")
            rounds["engine"] = lambda: engine_round(api, phone, caller, **timing)
        try:
            for p in paths:
                await rounds[p]()  # warm-up, not counted
            for n in range(args.rounds):
                for p in paths:  # alternating, so drift over the run hits both alike
                    results[p].append(await rounds[p]())
                    if args.verbose:
                        print(f"round {n + 1} {p}: {results[p][-1] * 1000:.1f} ms", flush=True)
        finally:
            if "native" in paths:
                # Leave the member as the sandbox starts it: ready.
                with contextlib.suppress(Exception):
                    await native_pause(ami, False)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20, help="measured rounds per path")
    ap.add_argument("--only", choices=["native", "engine"], help="run one path only")
    ap.add_argument("--settle", type=float, default=0.5, help="s in the queue before ready")
    ap.add_argument("--jitter", type=float, default=1.0, help="random extra settle, s (max)")
    ap.add_argument("--http-port", type=int, default=8498, help="the engine's HTTP port")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every round")
    args = ap.parse_args()
    results = asyncio.run(run(args))
    report(results, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
