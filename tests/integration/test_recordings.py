"""Recordings and supervisor monitoring on the real Asterisk, with SIPp callers and phones.

A SIPp caller rings the queue's DID; the agent's SIPp phone answers and plays a steady tone
(a capture written here), so what Asterisk records, or sends to a supervisor, can be measured:
the file's length (soxi, from Debian's sox), a paused span's silence, the supervisor's RTP.

Phones use ports 5094-5099 (other tests use 5091-5093 and 5080); the caller sends from 5070
as the trunk's callers do.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import socket
import struct
import subprocess
import time
import wave
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from sambung.recordings import store as sql
from sambung.recordings.journal import Job
from tests.integration.adoption_rig import free_port, proc_engines
from tests.integration.callers import PCAP_DIR, Pause, write_scenario
from tests.integration.harness import TOKEN, RunningEngine, engine_database, running_engine, sipp
from tests.integration.phones import LOCAL_IP, AgentPhone, _port_taken
from tests.integration.sandbox import FaultScope

DID = "1600"
SUPERVISOR_TOKEN = "supervisor-sari-token-0123456789"
AGENT_TOKEN = "agent-siti-token-0123456789"
TONE_HZ = 440
TONE_LEVEL = 8000  # of 32767


def sections(tmp_path: Path, **recordings: Any) -> dict[str, Any]:
    agent = {
        "id": "siti",
        "name": "Siti",
        "endpoint": "agent1001",
        "pin": "1001",
        "skills": {"collections": 4},
        "queues": ["support"],
    }
    queue = {
        "name": "support",
        "greeting": [],
        "announce_every_seconds": 0,
        "ring_timeout_seconds": 10,
        "wrap_up_seconds": 1,
    }
    return {
        "acd": {"queues": [queue], "agents": [agent]},
        "hotlines": [{"did": DID, "name": "Support", "queue": "support"}],
        "dialer": {"campaigns": []},
        "engine": {"spool_dir": tmp_path / "spool"},
        "http": {
            "role_tokens": [
                {"name": "sari", "token": SUPERVISOR_TOKEN, "role": "supervisor"},
                {"name": "siti", "token": AGENT_TOKEN, "role": "agent"},
            ]
        },
        "recordings": {
            "store_dir": tmp_path / "store",
            "supervisor_phones": {"sari": "supervisor1"},
            **recordings,
        },
    }


# ---- audio: G.711 A-law and a tone capture for SIPp ----------------------------------------


def alaw(sample: int) -> int:
    """16-bit linear to A-law (ITU-T G.711): 13-bit magnitude, segment and 4 bits, then the
    even bits inverted."""
    s = sample >> 3
    if s >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        s = -s - 1
    for seg, end in enumerate((0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)):
        if s <= end:
            low = (s >> 1) if seg < 2 else (s >> seg)
            return ((seg << 4) | (low & 0x0F)) ^ mask
    return 0x7F ^ mask


def alaw_to_linear(code: int) -> int:
    code ^= 0x55
    t = (code & 0x0F) << 4
    seg = (code & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if code & 0x80 else -t


def tone_pcap(path: Path, seconds: float) -> None:
    """RTP (PCMA, 20 ms packets) of a steady tone, for SIPp's play_pcap_audio. The frame
    headers come from SIPp's own capture with the lengths set for 160-byte payloads; SIPp
    rewrites addresses, ports and checksums when it plays them."""
    sample = (PCAP_DIR / "dtmf_2833_1.pcap").read_bytes()
    header = bytearray(sample[24 + 16 : 24 + 16 + 42])
    payload_len = 12 + 160
    struct.pack_into(">H", header, 14 + 2, 20 + 8 + payload_len)  # IPv4 total length
    struct.pack_into(">H", header, 14 + 20 + 4, 8 + payload_len)  # UDP length
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for n in range(int(seconds * 50)):
        body = bytes(
            alaw(int(TONE_LEVEL * math.sin(2 * math.pi * TONE_HZ * (n * 160 + i) / 8000)))
            for i in range(160)
        )
        rtp = struct.pack(">BBHII", 0x80, 8, (1000 + n) & 0xFFFF, n * 160, 0x5A4B0202)
        frame = bytes(header) + rtp + body
        at = n * 0.02
        sec, usec = 1_700_000_000 + int(at), round((at % 1) * 1_000_000)
        out += struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame
    path.write_bytes(bytes(out))


# ---- SIPp phones answering with a scenario of our own ---------------------------------------


def answer_scenario(*, pcap: Path | None, sdp_port: int | None = None) -> str:
    """A phone that answers (PCMA), plays ``pcap`` if given, and waits for the far end's BYE.
    ``sdp_port``: the media port announced in the SDP (a socket of the test's own, to capture
    what Asterisk sends); SIPp's own media port otherwise."""
    media = str(sdp_port) if sdp_port is not None else "[media_port]"
    play = f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n' if pcap else ""
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="answers and waits">
  <recv request="INVITE" crlf="true"/>
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:phone@[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0
    ]]>
  </send>
  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:phone@[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=phone 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio {media} RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
      a=sendrecv
    ]]>
  </send>
  <recv request="ACK" crlf="true"/>
{play}  <recv request="BYE"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <timewait milliseconds="1000"/>
</scenario>
"""


class ScenarioPhone(AgentPhone):
    """An ``AgentPhone`` (registration, INVITE log, clean stop) answering with a scenario
    written by the test."""

    async def __aenter__(self) -> ScenarioPhone:
        return self

    async def serve_scenario(self, text: str, *, timeout: float = 60.0) -> None:
        await self.stop()
        self._runs += 1
        scenario = self.dir / f"scenario-{self._runs}.xml"
        scenario.write_text(text)
        log = self.dir / f"uas-{self._runs}.log"
        self._logs.append(log)
        self._uas = await asyncio.create_subprocess_exec(
            "sipp",
            *("-sf", str(scenario), "-i", LOCAL_IP, "-p", str(self.port)),
            *("-mp", str(self.media_port), "-m", "1", "-l", "1"),
            *("-timeout", f"{int(timeout)}s", "-nostdin"),
            *("-trace_msg", "-message_file", str(log), "-trace_err"),
            cwd=self.dir,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while not _port_taken(self.port):
            if self._uas.returncode is not None or time.monotonic() > deadline:
                raise AssertionError(f"{self.endpoint}: SIPp is not listening on {self.port}")
            await asyncio.sleep(0.02)


# ---- the API and the engine ----------------------------------------------------------------


class Api:
    def __init__(self, run: RunningEngine, http: aiohttp.ClientSession) -> None:
        self.base = f"http://127.0.0.1:{run.engine.http_port}"
        self.http = http

    async def call(
        self, method: str, path: str, body: Any = None, token: str = TOKEN, **headers: str
    ) -> tuple[int, Any, dict[str, str]]:
        h = {"Authorization": f"Bearer {token}", **headers}
        async with self.http.request(method, self.base + path, json=body, headers=h) as r:
            raw = await r.read()
            ctype = r.headers.get("Content-Type", "")
            data: Any = raw
            if "json" in ctype:
                import json

                data = json.loads(raw)
            return r.status, data, dict(r.headers)

    async def ok(self, method: str, path: str, body: Any = None, token: str = TOKEN) -> Any:
        status, data, _ = await self.call(method, path, body, token)
        assert status < 300, (method, path, status, data)
        return data


@contextlib.asynccontextmanager
async def engine(tmp_path: Path, **recordings: Any) -> AsyncIterator[tuple[RunningEngine, Api]]:
    async with (
        running_engine(**sections(tmp_path, **recordings)) as run,
        aiohttp.ClientSession() as http,
    ):
        yield run, Api(run, http)


async def wait_for(pred: Any, timeout: float, what: str) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await pred()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def staff_siti(api: Api, phone: ScenarioPhone, tone: Path) -> None:
    await phone.register()
    await phone.serve_scenario(answer_scenario(pcap=tone))

    async def online() -> bool:
        view = await api.ok("GET", "/api/v1/agents/siti")
        return bool(view["phone_online"])

    await wait_for(online, 10, "siti's phone online")
    await api.ok("POST", "/api/v1/agents/siti/login")


async def on_call(api: Api) -> str | None:
    view = await api.ok("GET", "/api/v1/agents/siti")
    return str(view["call_id"]) if view["state"] == "on_call" else None


def soxi_seconds(path: Path) -> float:
    out = subprocess.run(
        ["soxi", "-D", str(path)], capture_output=True, text=True, check=True, timeout=10
    )
    return float(out.stdout.strip())


def wav_samples(path: Path) -> tuple[int, list[int]]:
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        frames = w.readframes(w.getnframes())
    return rate, [
        int.from_bytes(frames[i : i + 2], "little", signed=True) for i in range(0, len(frames), 2)
    ]


def rms(values: list[int]) -> float:
    return math.sqrt(sum(v * v for v in values) / len(values)) if values else 0.0


# ---- the tests -------------------------------------------------------------------------------


async def test_a_recorded_call_matches_length_and_checksum_with_a_silent_pause(
    tmp_path: Path,
) -> None:
    tone = tmp_path / "tone.pcap"
    tone_pcap(tone, 30)
    async with (
        engine(tmp_path, announcement=["sound:beep"]) as (run, api),
        ScenarioPhone("agent1001", "a1001", 5094, workdir=tmp_path) as siti,
    ):
        await staff_siti(api, siti, tone)
        scenario = write_scenario(
            tmp_path, "caller", [Pause(9000)], hang_up=True, caller="0811110001"
        )
        talk = asyncio.create_task(sipp(scenario, DID, timeout=40))
        call_id = await wait_for(lambda: on_call(api), 15, "siti on the call")
        await asyncio.sleep(2.5)
        # The agent takes card details: paused for two seconds, by the agent's own token.
        path = f"/api/v1/calls/{call_id}/recording"
        paused = await api.ok("POST", f"{path}/pause", token=AGENT_TOKEN)
        assert paused["state"] == "paused"
        await asyncio.sleep(2.0)
        resumed = await api.ok("POST", f"{path}/resume", token=AGENT_TOKEN)
        assert resumed["state"] == "recording"
        result = await talk
        assert result.returncode == 0, result.output
        hung_up = time.monotonic()
        name = f"sambung/{call_id}"

        async def row() -> Any:
            return await sql.get_recording(run.pool, name)

        rec = await wait_for(row, 15, "the recording's row")
        indexed_after = time.monotonic() - hung_up
        svc = run.engine.recordings.service  # type: ignore[union-attr]
        await wait_for(lambda: _yes(svc.pending_jobs() == 0), 10, "the move to finish")

        # Downloads: the agent may not, the supervisor may; Range gives the asked bytes.
        rid = call_id
        status, _, _ = await api.call("GET", f"/api/v1/recordings/{rid}/file", token=AGENT_TOKEN)
        assert status == 403
        status, data, headers = await api.call(
            "GET", f"/api/v1/recordings/{rid}/file", token=SUPERVISOR_TOKEN
        )
        assert status == 200
        assert headers["Content-Type"] == "audio/wav"
        status, part, headers = await api.call(
            "GET", f"/api/v1/recordings/{rid}/file", token=SUPERVISOR_TOKEN, Range="bytes=44-8043"
        )
        assert status == 206
        assert headers["Content-Range"] == f"bytes 44-8043/{len(data)}"
        assert part == data[44:8044]
        downloaded = tmp_path / "download.wav"
        downloaded.write_bytes(data)

        # The checksum the database holds is the file's, in the store and as downloaded.
        assert rec["sha256"] == hashlib.sha256(data).hexdigest()
        stored = (tmp_path / "store" / rec["store_key"]).read_bytes()
        assert stored == data
        assert rec["size_bytes"] == len(data)

        # Its length (soxi) matches the call's talk time (the leg's, from answer to end).
        leg = await run.pool.fetchrow(
            "SELECT talk_seconds FROM call_legs WHERE call_id = $1 AND agent_id = 'siti'", call_id
        )
        assert leg is not None
        length = soxi_seconds(downloaded)
        assert abs(length - leg["talk_seconds"]) < 1.0, (length, leg["talk_seconds"])
        assert abs(length - rec["duration_seconds"]) < 0.01
        print(
            f"\nrecorded {length:.3f} s for a talk of {leg['talk_seconds']:.3f} s; row indexed "
            f"{indexed_after:.2f} s after the caller's BYE; move (end -> indexed) "
            f"{svc.moved[-1][1]:.3f} s"
        )

        # The paused span is silent; the tone is there before and after it.
        rate, audio = wav_samples(downloaded)
        [(start, end)] = rec["paused_spans"]
        assert 1.8 <= end - start <= 2.3
        inside = audio[int((start + 0.2) * rate) : int((end - 0.2) * rate)]
        before = audio[int(max(0.0, start - 1.2) * rate) : int((start - 0.2) * rate)]
        after = audio[int((end + 0.2) * rate) : int((end + 1.2) * rate)]
        assert max(abs(v) for v in inside) < 100, "the paused span is not silent"
        assert rms(before) > 1000
        assert rms(after) > 1000
        print(f"rms before {rms(before):.0f}, paused {rms(inside):.1f}, after {rms(after):.0f}")

        # Audit: the pause, the resume and every download attempt, with its range.
        await wait_for(lambda: _yes(run.engine.facts.pending == 0), 10, "facts written")  # type: ignore[union-attr]
        trail = await run.pool.fetch(
            "SELECT principal, action, range_start, range_end, status FROM recording_audit "
            "WHERE name = $1 ORDER BY at",
            name,
        )
        assert [tuple(r) for r in trail] == [
            ("siti", "pause", None, None, None),
            ("siti", "resume", None, None, None),
            ("siti", "download", None, None, 403),
            ("sari", "download", None, None, 200),
            ("sari", "download", 44, 8043, 206),
        ]

        # Retention: this recording expires 90 days after it started, a younger one stays.
        young_started = rec["started_at"] + timedelta(days=2)
        key = f"{young_started:%Y/%m/%d}/young.wav"
        obj = await svc.store.put(key, stored)
        await sql.insert_recording(
            run.pool,
            Job(
                "sambung/young", "young", 1, "siti", "support", None, "all", "wav", young_started
            ).advance(
                "stored",
                store_key=key,
                size_bytes=obj.size,
                sha256=obj.sha256,
                stored_at=young_started,
            ),
        )
        now = rec["started_at"] + timedelta(days=90, minutes=1)
        assert await svc.retention_once(now) == [name]
        assert not (tmp_path / "store" / rec["store_key"]).exists()
        assert (tmp_path / "store" / key).exists()
        status, _, _ = await api.call(
            "GET", f"/api/v1/recordings/{rid}/file", token=SUPERVISOR_TOKEN
        )
        assert status == 404


async def _yes(v: bool) -> bool:
    return v


class RtpCapture:
    """A UDP socket standing in for the supervisor phone's media port: counts RTP packets and
    keeps their A-law payloads."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOCAL_IP, 0))
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]
        self.packets = 0
        self.samples: list[int] = []

    def drain(self) -> None:
        while True:
            try:
                data = self.sock.recv(2048)
            except BlockingIOError:
                return
            if len(data) > 12 and data[1] & 0x7F == 8:
                self.packets += 1
                self.samples += [alaw_to_linear(b) for b in data[12:]]

    def close(self) -> None:
        self.sock.close()


async def test_a_supervisor_listening_hears_the_call_on_their_own_phone(tmp_path: Path) -> None:
    tone = tmp_path / "tone.pcap"
    tone_pcap(tone, 30)
    capture = RtpCapture()
    try:
        async with (
            engine(tmp_path) as (run, api),
            ScenarioPhone("agent1001", "a1001", 5094, workdir=tmp_path) as siti,
            ScenarioPhone("supervisor1", "s1001", 5096, workdir=tmp_path) as sari,
        ):
            await staff_siti(api, siti, tone)
            await sari.register()
            await sari.serve_scenario(answer_scenario(pcap=None, sdp_port=capture.port))
            scenario = write_scenario(tmp_path, "caller", [Pause(14000)], hang_up=True)
            talk = asyncio.create_task(sipp(scenario, DID, timeout=40))
            call_id = await wait_for(lambda: on_call(api), 15, "siti on the call")
            status, _body, _ = await api.call(
                "POST", "/api/v1/monitor", {"agent_id": "siti", "mode": "listen"}, token=AGENT_TOKEN
            )
            assert status == 403
            session = await api.ok(
                "POST", "/api/v1/monitor", {"agent_id": "siti", "mode": "listen"}, SUPERVISOR_TOKEN
            )
            sid = session["session_id"]
            invite = await sari.wait_invite(10)
            assert invite.user == "supervisor1"

            async def active() -> bool:
                views = (await api.ok("GET", "/api/v1/monitor", token=SUPERVISOR_TOKEN))["sessions"]
                return bool(views) and views[0]["state"] == "active"

            await wait_for(active, 10, "the session active")
            capture.drain()
            capture.packets, capture.samples = 0, []
            for _ in range(30):  # three seconds of what the supervisor's phone is sent
                await asyncio.sleep(0.1)
                capture.drain()
            level = rms(capture.samples)
            print(f"\nsupervisor received {capture.packets} RTP packets in 3 s, rms {level:.0f}")
            assert capture.packets >= 100  # 150 expected: one every 20 ms
            assert rms(capture.samples) > 1000  # the agent's tone, not silence

            await api.ok("DELETE", f"/api/v1/monitor/{sid}", token=SUPERVISOR_TOKEN)
            assert await sari.finish(10) == 0  # the supervisor's phone got its BYE
            await talk
            await wait_for(lambda: _yes(run.engine.facts.pending == 0), 10, "facts")  # type: ignore[union-attr]
            trail = await run.pool.fetch(
                "SELECT principal, action, mode, call_id, agent_id, endpoint, detail "
                "FROM supervision_audit WHERE session_id = $1 ORDER BY at",
                sid,
            )
            assert [(r["action"], r["detail"]) for r in trail] == [
                ("start", ""),
                ("answered", ""),
                ("stop", "stopped"),
            ]
            assert {
                (r["principal"], r["mode"], r["call_id"], r["agent_id"], r["endpoint"])
                for r in trail
            } == {("sari", "listen", call_id, "siti", "supervisor1")}
    finally:
        capture.close()


pytestmark = pytest.mark.timeout(150)


@pytest.mark.parametrize("how", ["kill", "term"])
async def test_a_supervisor_listening_through_an_engine_change_hears_on(
    tmp_path: Path, fault_scope: FaultScope, how: str
) -> None:
    """A supervisor listens to a talk; the engine is SIGKILLed (a crash) or SIGTERMed (a
    deploy: the session is handed over with the talk). The next engine carries the talk and the
    session on: the supervisor's phone is never rung again and still hears the agent, the
    session keeps its id, and the supervisor ends it as before."""
    tone = tmp_path / "tone.pcap"
    tone_pcap(tone, 40)
    capture = RtpCapture()
    port = free_port()
    try:
        async with (
            engine_database() as (url, pool),
            aiohttp.ClientSession() as http,
            ScenarioPhone("agent1001", "a1001", 5094, workdir=tmp_path) as siti,
            ScenarioPhone("supervisor1", "s1001", 5096, workdir=tmp_path) as sari,
        ):
            spec = {
                "database_url": url,
                **sections(tmp_path),
                "engine": {"spool_dir": str(tmp_path / "spool"), "instance_id": f"mon-{how}"},
                "http": {**sections(tmp_path)["http"], "port": port},
            }
            first, second = proc_engines(tmp_path, spec, port)
            api = Api(SimpleNamespace(engine=SimpleNamespace(http_port=port)), http)  # type: ignore[arg-type]
            try:
                fault_scope.track(await first.start(timeout=60))
                await staff_siti(api, siti, tone)
                await sari.register()
                await sari.serve_scenario(answer_scenario(pcap=None, sdp_port=capture.port))
                scenario = write_scenario(tmp_path, "caller", [Pause(30000)], hang_up=True)
                talk = asyncio.create_task(sipp(scenario, DID, timeout=60))
                await wait_for(lambda: on_call(api), 15, "siti on the call")
                session = await api.ok(
                    "POST",
                    "/api/v1/monitor",
                    {"agent_id": "siti", "mode": "listen"},
                    SUPERVISOR_TOKEN,
                )
                sid = session["session_id"]

                async def active() -> bool:
                    views = (await api.ok("GET", "/api/v1/monitor", token=SUPERVISOR_TOKEN))[
                        "sessions"
                    ]
                    return bool(views) and views[0]["state"] == "active"

                await wait_for(active, 10, "the session active")
                if how == "kill":
                    await first.kill()
                else:
                    assert await first.terminate(30) == 0, first.tail()
                fault_scope.track(await second.start(timeout=60))
                await wait_for(active, 10, "the session active with the new engine")
                (view,) = (await api.ok("GET", "/api/v1/monitor", token=SUPERVISOR_TOKEN))[
                    "sessions"
                ]
                assert view["session_id"] == sid
                capture.drain()
                capture.packets, capture.samples = 0, []
                for _ in range(30):  # three seconds of what the supervisor's phone is sent
                    await asyncio.sleep(0.1)
                    capture.drain()
                assert capture.packets >= 100, capture.packets
                assert rms(capture.samples) > 1000  # the agent's tone, still
                await api.ok("DELETE", f"/api/v1/monitor/{sid}", token=SUPERVISOR_TOKEN)
                assert await sari.finish(10) == 0  # one INVITE, then its BYE
                await talk

                async def stopped() -> Any:
                    return await pool.fetchval(
                        "SELECT count(*) FROM supervision_audit "
                        "WHERE session_id = $1 AND action = 'stop'",
                        sid,
                    )

                await wait_for(stopped, 10, "the session's stop audited")
            finally:
                with contextlib.suppress(Exception):
                    await second.terminate(30)
            trail = [
                r["action"]
                for r in await pool.fetch(
                    "SELECT action FROM supervision_audit WHERE session_id = $1 ORDER BY at", sid
                )
            ]
            handed = ["handed_over"] if how == "term" else []
            assert trail == ["start", "answered", *handed, "taken_over", "stop"], trail
            assert len(sari.invites) == 1
    finally:
        capture.close()
