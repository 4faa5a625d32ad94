"""Agent ready -> INVITE at the agent's phone: the engine's ACD vs Asterisk's app_queue.

One caller waits in a queue with the only agent paused; the agent is made ready and the clock
runs until the agent's desk phone (a SIPp phone registered as agent1003) receives the INVITE.
Both paths use the same Asterisk, the same phone and the same kind of caller, in alternating
rounds of one run:

- engine: DID 1601 -> the engine's queue ``bench``; "ready" is ``POST /api/v1/agents/made/ready``
  (the time the request is sent);
- native: extension 7200 -> ``Queue(native-bench)`` (asterisk/conf/queues.conf) with agent1003
  as a static member; "ready" is the AMI action ``QueuePause Paused=false``.

The INVITE's arrival is SIPp's own timestamp in its message log; both ends read the same
clock. Run with the sandbox up and PostgreSQL reachable:

    .venv/bin/python -m bench.agent_ring --rounds 15
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from panoramisk import Manager

from bench.first_audio import pct, wait_ready
from tests.integration.callers import Pause, write_scenario
from tests.integration.harness import sipp
from tests.integration.phones import AgentPhone

ENGINE_DID = "1601"
NATIVE_EXTEN = "7200"
TOKEN = "bench-token-0123456789abcdef"
AGENT_PORT = 5093
CALLER_HOLD_MS = 2500  # the caller stays this long after being answered, then hangs up

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


async def _until(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await pred():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def engine_round(api: Api, phone: AgentPhone, caller: Path) -> float:
    await api.acall("POST", "/api/v1/agents/made/pause")
    call = asyncio.create_task(sipp(caller, ENGINE_DID, timeout=30))

    async def waiting() -> bool:
        queues = await api.acall("GET", "/api/v1/queues")
        return bool(queues["queues"][0]["waiting"] == 1)

    await _until(waiting, 5, "the caller in the engine's queue")
    t0 = time.time()
    await api.acall("POST", "/api/v1/agents/made/ready")
    invite = await phone.wait_invite(10, after=t0)
    await call

    async def ready() -> bool:
        return bool((await api.acall("GET", "/api/v1/agents/made"))["state"] == "ready")

    await _until(ready, 5, "the agent ready again")
    return invite.at - t0


async def native_round(ami: Manager, phone: AgentPhone, caller: Path) -> float:
    await _pause(ami, True)
    call = asyncio.create_task(sipp(caller, NATIVE_EXTEN, timeout=30))

    async def waiting() -> bool:
        reply = await ami.send_action({"Action": "QueueSummary", "Queue": "native-bench"})
        rows = reply if isinstance(reply, list) else [reply]
        return any(str(r.get("Callers", "0")) == "1" for r in rows)

    await _until(waiting, 5, "the caller in app_queue")
    t0 = time.time()
    await _pause(ami, False)
    invite = await phone.wait_invite(10, after=t0)
    await call
    await asyncio.sleep(0.3)  # the member's call is over before the next round pauses it
    return invite.at - t0


async def _pause(ami: Manager, paused: bool) -> None:
    await ami.send_action(
        {
            "Action": "QueuePause",
            "Queue": "native-bench",
            "Interface": "PJSIP/agent1003",
            "Paused": "true" if paused else "false",
            "Reason": "bench",
        }
    )


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15, help="measured rounds per path")
    ap.add_argument("--http-port", type=int, default=8498)
    args = ap.parse_args()
    from tests.dbutil import fresh_database

    work = Path(tempfile.mkdtemp(prefix="sambung-bench-acd-"))
    caller = write_scenario(work, "caller", [Pause(CALLER_HOLD_MS)], hang_up=True)
    results: dict[str, list[float]] = {"native": [], "engine": []}
    async with fresh_database("sambung_bench_acd") as db_url:
        cfg = work / "bench.toml"
        cfg.write_text(
            CONFIG.format(
                spool=work / "spool", port=args.http_port, db=db_url, did=ENGINE_DID, token=TOKEN
            )
        )
        env = {**os.environ, "SAMBUNG_CONFIG": str(cfg)}
        exe = str(Path(sys.executable).parent / "sambung")
        mig = await asyncio.create_subprocess_exec(
            exe, "migrate", env=env, stdout=asyncio.subprocess.DEVNULL
        )
        assert await mig.wait() == 0, "migrate failed"
        log_fd = os.open(work / "engine.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        engine = await asyncio.create_subprocess_exec(exe, "run", env=env, stderr=log_fd)
        os.close(log_fd)
        ami = Manager(
            host="127.0.0.1",
            port=5038,
            username="sambung",
            secret="sambung-dev-secret",
            ping_delay=0,
            reconnect_timeout=0,
        )
        try:
            await asyncio.to_thread(wait_ready, args.http_port, 30)
            await ami.connect()
            api = Api(args.http_port)
            async with AgentPhone("agent1003", "a1003", AGENT_PORT, workdir=work) as phone:
                await phone.register()
                await phone.serve("answer", calls=2 * (args.rounds + 1), timeout=600)

                async def online() -> bool:
                    return bool((await api.acall("GET", "/api/v1/agents/made"))["phone_online"])

                await _until(online, 10, "the agent's phone registered")
                await api.acall("POST", "/api/v1/agents/made/login")
                await native_round(ami, phone, caller)  # warm both paths up
                await engine_round(api, phone, caller)
                for _ in range(args.rounds):
                    results["native"].append(await native_round(ami, phone, caller))
                    results["engine"].append(await engine_round(api, phone, caller))
                await _pause(ami, True)
        finally:
            ami.close()
            engine.send_signal(signal.SIGTERM)
            await engine.wait()

    print(
        f"agent ready -> INVITE at the agent's phone: {args.rounds} rounds per path, "
        f"alternating, one caller waiting (engine log: {work / 'engine.log'})"
    )
    print(f"{'path':<8}{'n':>4}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for label in ("native", "engine"):
        v = results[label]
        print(
            f"{label:<8}{len(v):>4}{pct(v, 0.5) * 1000:>10.1f}{pct(v, 0.99) * 1000:>10.1f}"
            f"{max(v) * 1000:>10.1f}"
        )
    eng, nat = results["engine"], results["native"]
    print(
        f"ratio engine/native: p50 {pct(eng, 0.5) / pct(nat, 0.5):.3f}x, "
        f"p99 {pct(eng, 0.99) / pct(nat, 0.99):.3f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
