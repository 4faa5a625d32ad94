"""Key press to the start of the prompt it leads to: the engine's IVR vs a dialplan menu.

Both timed on Asterisk's own clock, so neither side's measuring code is in the figure:

- engine: ``ChannelDtmfReceived`` -> ``PlaybackStarted`` of the next node's prompt (ARI event
  timestamps), through a running engine (in this process) on DID 1599;
- native: AMI ``DTMFEnd`` -> the ``UserEvent`` the ``native-ivr`` dialplan menu raises just
  before ``Playback`` of the next prompt (extension 7100: ``Background()`` + ``WaitExten()``,
  key 1 plays the next prompt), dialled from the sandbox-only ``bench`` endpoint's port.

Each call: the menu prompt (30 s) plays, the caller presses 1 after 1.5 s (barge-in), the next
prompt plays, the far end hangs up. Calls are sequential, alternating paths, loopback only.
The ``UserEvent`` comes before the dialplan even opens the prompt file, so the native figure
is, if anything, flattering to the dialplan.

    .venv/bin/python -m bench.dtmf_to_prompt --calls 20
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from bench import NATIVE_SIP_PORT, TRUNK_SIP_PORT
from sambung.asterisk.ami.adapter import AmiAdapter, AmiMessage
from sambung.engine.metrics import build_metrics
from sambung.ivr.flows import FlowTable
from sambung.ivr.model import Flow, HangupNode, MenuNode, Retry
from tests.integration.callers import Pause, Press, write_scenario
from tests.integration.harness import running_engine, sipp

ENGINE_DID = "1599"
NATIVE_EXTEN = "7100"


def bench_flow() -> Flow:
    nodes = (
        MenuNode(
            "menu",
            ("sound:demo-congrats",),
            (("1", "next"),),
            timeout_seconds=10,
            retry=Retry(1, (), (), "next"),
        ),
        HangupNode("next", ("sound:hello-world",), "ivr_completed"),
    )
    return Flow(
        name="bench",
        dids=(ENGINE_DID,),
        start="menu",
        nodes=tuple((n.id, n) for n in nodes),
        default_language="en",
        languages=("en",),
        zero_out_target=None,
        source="bench",
        version="bench",
    )


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[max(0, min(len(s) - 1, round(q * (len(s) - 1))))]


class NativeTimer:
    """Pairs AMI DTMFEnd with the next SambungBenchPrompt UserEvent on the same channel."""

    def __init__(self) -> None:
        self.dtmf_at: dict[str, float] = {}
        self.samples: list[float] = []

    async def on_event(self, msg: AmiMessage) -> None:
        name = msg.get("Event")
        chan = msg.get("Channel")
        stamp = msg.get("Timestamp")
        if not stamp:
            return
        if name == "DTMFEnd" and msg.get("Direction") == "Received":
            self.dtmf_at[chan] = float(stamp)
        elif name == "UserEvent" and msg.get("UserEvent") == "SambungBenchPrompt":
            t0 = self.dtmf_at.pop(chan, None)
            if t0 is not None:
                self.samples.append(float(stamp) - t0)


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=20, help="calls per path")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sambung-dtmf-bench-"))
    steps: list[Any] = [Pause(1500), Press("1")]
    scenario = write_scenario(work, "caller", steps, hang_up=False)
    native = NativeTimer()
    ami = AmiAdapter("127.0.0.1", 5038, "sambung", "sambung-dev-ami-secret", build_metrics())
    ami.register_event("DTMFEnd", native.on_event)
    ami.register_event("UserEvent", native.on_event)
    ami_task = asyncio.create_task(ami.run())
    engine_ms: list[float] = []
    failures = 0
    try:
        await ami.wait_connected(10)
        with capture_logs() as logs:
            async with running_engine(engine={"log_level": "warning"}) as run:
                run.engine.ivr.flows = FlowTable({ENGINE_DID: bench_flow()})
                paths = ((NATIVE_EXTEN, NATIVE_SIP_PORT), (ENGINE_DID, TRUNK_SIP_PORT))
                for _ in range(args.calls):
                    for number, port in paths:
                        result = await sipp(
                            scenario, number, timeout=40, workdir=work, local_port=port
                        )
                        failures += result.returncode != 0
        engine_ms = [e["ms"] / 1000 for e in logs if e.get("event") == "ivr.digit_to_prompt"]
    finally:
        ami_task.cancel()
        await asyncio.gather(ami_task, return_exceptions=True)

    print(
        f"Key press to next prompt start, {args.calls} sequential calls per path, "
        f"alternating, loopback; Asterisk's clock ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)"
    )
    print(f"{'path':<8}{'n':>5}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for label, v in (("native", native.samples), ("engine", engine_ms)):
        if not v:
            print(f"{label:<8}{0:>5}  no samples")
            continue
        print(
            f"{label:<8}{len(v):>5}{pct(v, 0.5) * 1000:>10.1f}{pct(v, 0.99) * 1000:>10.1f}"
            f"{max(v) * 1000:>10.1f}"
        )
    if native.samples and engine_ms:
        diff = (statistics.mean(engine_ms) - statistics.mean(native.samples)) * 1000
        print(
            f"engine - native: p50 {(pct(engine_ms, 0.5) - pct(native.samples, 0.5)) * 1000:+.1f}"
            f" ms, p99 {(pct(engine_ms, 0.99) - pct(native.samples, 0.99)) * 1000:+.1f} ms, "
            f"mean {diff:+.1f} ms; failed calls: {failures}"
        )
    complete = len(engine_ms) == args.calls and len(native.samples) == args.calls
    return 0 if complete and failures == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
