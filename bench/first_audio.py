"""INVITE-to-first-audio latency: through the engine vs Asterisk's own dialplan, in one run.

For each path, N sequential SIPp calls (one at a time, loopback only). The SDP points the
caller's audio at a UDP port this script listens on; "first audio" is the first RTP packet
whose G.711 payload is not silence. INVITE send times come from SIPp's message trace. Both
paths play the same file (hello-world):

- engine: DID 1599 -> Stasis -> the engine answers over ARI and plays the greeting;
- native: extension 7000 -> dialplan Answer() + Playback(hello-world), no engine involved;
  dialled from the sandbox-only ``bench`` endpoint's port (``bench.NATIVE_SIP_PORT``), as the
  trunk has no such extension.

Run with the sandbox up (ops/sandbox up) and PostgreSQL reachable:

    .venv/bin/python -m bench.first_audio --calls 30
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import statistics
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import cast

from bench import NATIVE_SIP_PORT, TRUNK_SIP_PORT

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "bench" / "sipp" / "uac_bench.xml"
ENGINE_DID = "1599"
NATIVE_EXTEN = "7000"

# G.711 silence sits at the top of the code space: 0xFF/0x7F for u-law, 0xD5/0x55 for A-law.
_ULAW_SILENT = {0xFF, 0x7F, 0xFE, 0x7E}
_ALAW_SILENT = {0xD5, 0x55, 0xD4, 0x54}


def _silent(payload_type: int, payload: bytes) -> bool:
    quiet = _ULAW_SILENT if payload_type == 0 else _ALAW_SILENT if payload_type == 8 else None
    if quiet is None:
        return True  # telephone-event or comfort noise: not audio
    loud = sum(1 for b in payload if b not in quiet)
    return loud < len(payload) // 8


@dataclass
class _Rtp(asyncio.DatagramProtocol):
    first_any: dict[int, float] = field(default_factory=dict)
    first_audio: dict[int, float] = field(default_factory=dict)
    transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        now = time.time()
        if len(data) < 12 or data[0] >> 6 != 2:
            return
        pt = data[1] & 0x7F
        ssrc = int.from_bytes(data[8:12], "big")
        self.first_any.setdefault(ssrc, now)
        if ssrc not in self.first_audio and not _silent(pt, data[12:]):
            self.first_audio[ssrc] = now


class _Control(asyncio.DatagramProtocol):
    """Learns Asterisk's RTP port for the current call from the SIPp scenario."""

    def __init__(self) -> None:
        self.ports: asyncio.Queue[int] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        # The scenario sends the SDP's media line, "m=audio <port>".
        digits = data.decode(errors="replace").strip().rpartition(" ")[2]
        if digits.isdigit():
            self.ports.put_nowait(int(digits))


async def _talk(rtp: _Rtp, control: _Control) -> None:
    """Send G.711 silence every 20 ms to the current call's Asterisk port, like a phone."""
    ssrc = 0x5A4B0001
    seq = 0
    target: tuple[str, int] | None = None
    while True:
        try:
            port = await asyncio.wait_for(control.ports.get(), 0.02 if target else None)
            target = ("127.0.0.1", port)
            ssrc += 1
        except TimeoutError:
            pass
        if target is not None and rtp.transport is not None:
            seq = (seq + 1) & 0xFFFF
            header = bytes([0x80, 0x00]) + seq.to_bytes(2, "big")
            header += (seq * 160 & 0xFFFFFFFF).to_bytes(4, "big") + ssrc.to_bytes(4, "big")
            rtp.transport.sendto(header + b"\xff" * 160, target)


_STAMP = re.compile(r"^-+ (\d{4}-\d{2}-\d{2})\s+(\d{2}:\d{2}:\d{2}\.\d+)")


def invite_times(trace: str) -> list[float]:
    """Wall-clock send times of the initial INVITEs in a SIPp -trace_msg file."""
    out: list[float] = []
    stamp: float | None = None
    lines = trace.splitlines()
    for i, line in enumerate(lines):
        m = _STAMP.match(line)
        if m:
            stamp = datetime.fromisoformat(f"{m.group(1)} {m.group(2)}").timestamp()
            continue
        if stamp is not None and "message sent" in line:
            nxt = next((ln for ln in lines[i + 1 : i + 4] if ln.strip()), "")
            if nxt.startswith("INVITE "):
                out.append(stamp)
            stamp = None
    return out


def latencies(invites: list[float], first_audio: list[float]) -> list[float]:
    """Pair each INVITE with the first audio that arrived before the next INVITE."""
    result: list[float] = []
    audio = sorted(first_audio)
    for i, t in enumerate(invites):
        end = invites[i + 1] if i + 1 < len(invites) else float("inf")
        hit = next((a for a in audio if t <= a < end), None)
        if hit is not None:
            result.append(hit - t)
    return result


METRICS = ("first packet", "first audio")


async def run_calls(
    number: str, calls: int, rtp_port: int, workdir: Path, sip_port: int = TRUNK_SIP_PORT
) -> dict[str, list[float]]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(_Rtp, local_addr=("127.0.0.1", rtp_port))
    ctl_transport, control = await loop.create_datagram_endpoint(
        _Control, local_addr=("127.0.0.1", rtp_port + 1)
    )
    talker = loop.create_task(_talk(proto, control))
    trace = workdir / f"trace-{number}.log"
    try:
        proc = await asyncio.create_subprocess_exec(
            "sipp",
            "-sf",
            str(SCENARIO),
            "-s",
            number,
            "127.0.0.1:5060",
            "-i",
            "127.0.0.1",
            "-p",
            str(sip_port),
            "-m",
            str(calls),
            "-l",
            "1",
            "-r",
            "50",
            "-key",
            "rtpport",
            str(rtp_port),
            "-key",
            "ctlport",
            str(rtp_port + 1),
            "-trace_msg",
            "-message_file",
            str(trace),
            "-timeout",
            f"{calls * 20}s",
            "-timeout_error",
            "-nostdin",
            cwd=workdir,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await proc.communicate()
        if proc.returncode != 0:
            print(
                f"sipp exited {proc.returncode}: {err.decode(errors='replace')[-500:]}",
                file=sys.stderr,
            )
    finally:
        talker.cancel()
        await asyncio.gather(talker, return_exceptions=True)
        ctl_transport.close()
        transport.close()
    invites = invite_times(trace.read_text(errors="replace"))
    return {
        "first packet": latencies(invites, list(proto.first_any.values())),
        "first audio": latencies(invites, list(proto.first_audio.values())),
    }


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(q * (len(s) - 1))))
    return s[k]


def wait_ready(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"engine not ready on port {port} within {timeout}s")


CONFIG = """
[engine]
instance_id = "sambung-bench"
log_format = "json"
log_level = "warning"
spool_dir = "{spool}"
[http]
port = {port}
api_tokens = ["bench-token-0123456789abcdef"]
[database]
url = "{db}"
[[hotlines]]
did = "{did}"
name = "Bench"
greeting = ["sound:hello-world"]
"""


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=30, help="calls per path (default 30)")
    ap.add_argument("--rounds", type=int, default=3, help="alternate paths this many times")
    ap.add_argument("--http-port", type=int, default=8499)
    args = ap.parse_args()
    from tests.dbutil import fresh_database

    async with fresh_database("sambung_bench") as db_url:
        work = Path(tempfile.mkdtemp(prefix="sambung-bench-"))
        cfg = work / "bench.toml"
        cfg.write_text(
            CONFIG.format(spool=work / "spool", port=args.http_port, db=db_url, did=ENGINE_DID)
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
        try:
            await asyncio.to_thread(wait_ready, args.http_port, 30)
            per_round = max(1, args.calls // args.rounds)
            results: dict[tuple[str, str], list[float]] = {
                (p, m): [] for p in ("native", "engine") for m in METRICS
            }
            # warm caches on both paths
            await run_calls(NATIVE_EXTEN, 2, 40000, work, NATIVE_SIP_PORT)
            await run_calls(ENGINE_DID, 2, 40002, work)
            for r in range(args.rounds):
                for label, number, port, sip_port in (
                    ("native", NATIVE_EXTEN, 40010 + r * 4, NATIVE_SIP_PORT),
                    ("engine", ENGINE_DID, 40012 + r * 4, TRUNK_SIP_PORT),
                ):
                    got = await run_calls(number, per_round, port, work, sip_port)
                    for m in METRICS:
                        results[(label, m)].extend(got[m])
        finally:
            engine.send_signal(signal.SIGTERM)
            await engine.wait()

    total = per_round * args.rounds
    print(
        f"INVITE to first audio: {total} sequential calls per path in {args.rounds} alternating "
        f"rounds over loopback (engine log: {work / 'engine.log'})"
    )
    print("'first packet' is Asterisk's first RTP packet; 'first audio' its first non-silent one")
    print(f"{'metric':<14}{'path':<8}{'n':>5}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    ok = True
    for m in METRICS:
        for label in ("native", "engine"):
            v = results[(label, m)]
            if len(v) < total:
                ok = False
            if not v:
                print(f"{m:<14}{label:<8}{0:>5}  no samples")
                continue
            print(
                f"{m:<14}{label:<8}{len(v):>5}{pct(v, 0.5) * 1000:>10.1f}"
                f"{pct(v, 0.99) * 1000:>10.1f}{max(v) * 1000:>10.1f}"
            )
        eng, nat = results[("engine", m)], results[("native", m)]
        if eng and nat:
            diff_ms = (statistics.mean(eng) - statistics.mean(nat)) * 1000
            print(
                f"{m:<14}ratio engine/native: p50 {pct(eng, 0.5) / pct(nat, 0.5):.2f}x, "
                f"p99 {pct(eng, 0.99) / pct(nat, 0.99):.2f}x, mean difference {diff_ms:+.1f} ms"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
