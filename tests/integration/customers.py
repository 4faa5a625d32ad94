"""The debtors' side of the customers trunk for dialer tests: one SIPp, many numbers.

``CustomerTrunk`` runs ``sipp/customer_trunk.xml`` on 5080 (where the sandbox's customers
trunk points), which answers, is busy, never answers... by the last digit of the dialled
number, and plays recorded speech into answered calls so that AMD has something to judge:
``halo.pcap`` ("halo", then silence: a person) and ``greeting.pcap`` (a long voicemail-style
greeting: a machine). Both are made here with espeak-ng and sox as G.711 A-law RTP captures,
so nothing binary is kept in the repository.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import subprocess
from pathlib import Path
from types import TracebackType

from tests.integration.harness import SIPP_DIR
from tests.integration.phones import Invite, parse_invites

PORT = 5080
MEDIA_PORT = 16200
HALO = "halo"
GREETING = (
    "Terima kasih telah menghubungi nomor ini. Saat ini saya tidak dapat menerima telepon "
    "Anda. Silakan tinggalkan pesan setelah nada berikut, dan saya akan segera menghubungi "
    "Anda kembali."
)
ALAW_SILENCE = b"\xd5"
FRAME = 160  # 20 ms of 8 kHz A-law


def _alaw(text: str, workdir: Path, name: str) -> bytes:
    wav = workdir / f"{name}.wav"
    raw = workdir / f"{name}.al"
    subprocess.run(["espeak-ng", "-v", "id", "-s", "150", "-w", str(wav), text], check=True)
    subprocess.run(
        ["sox", "-q", str(wav), "-r", "8000", "-c", "1", "-t", "al", str(raw)], check=True
    )
    return raw.read_bytes()


def write_rtp_pcap(path: Path, payload: bytes, *, ssrc: int = 0x5A4B1234) -> float:
    """A pcap of RTP/UDP/IPv4 packets carrying ``payload`` (A-law) in 20 ms frames.

    SIPp replays the packets' payloads at their capture times to the call's media address.
    Returns the audio's length in seconds.
    """
    payload += ALAW_SILENCE * (-len(payload) % FRAME)
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # Ethernet
    seq, ts = 1000, 160000
    for i in range(0, len(payload), FRAME):
        rtp = struct.pack("!BBHII", 0x80, 8, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)
        rtp += payload[i : i + FRAME]
        udp = struct.pack("!HHHH", 16000, 16000, 8 + len(rtp), 0) + rtp
        ip_header = struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(udp),
            0,
            0,
            64,
            17,
            0,
            bytes([127, 0, 0, 1]),
            bytes([127, 0, 0, 1]),
        )
        frame = b"\x00" * 12 + b"\x08\x00" + ip_header + udp
        t = i // FRAME * 0.020
        sec, usec = int(t), round((t - int(t)) * 1_000_000)
        out += struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame
        seq += 1
        ts += FRAME
    path.write_bytes(bytes(out))
    return len(payload) / 8000


def make_audio(workdir: Path) -> dict[str, float]:
    """halo.pcap: 0.3 s of silence, "halo", 4 s of silence. greeting.pcap: about 9 s of
    continuous speech. Returns each file's length in seconds."""
    halo = ALAW_SILENCE * 2400 + _alaw(HALO, workdir, "halo") + ALAW_SILENCE * 32000
    greeting = ALAW_SILENCE * 1600 + _alaw(GREETING, workdir, "greeting") + ALAW_SILENCE * 8000
    return {
        "halo": write_rtp_pcap(workdir / "halo.pcap", halo),
        "greeting": write_rtp_pcap(workdir / "greeting.pcap", greeting),
    }


class CustomerTrunk:
    def __init__(self, workdir: Path, calls: int = 60, timeout: float = 240.0) -> None:
        self.dir = workdir
        self.calls = calls
        self.timeout = timeout
        self.log = workdir / "customer-trunk-messages.log"
        self._proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> CustomerTrunk:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.lengths = await asyncio.to_thread(make_audio, self.dir)
        self._proc = await asyncio.create_subprocess_exec(
            "sipp",
            *("-sf", str(SIPP_DIR / "customer_trunk.xml")),
            *("-i", "127.0.0.1", "-p", str(PORT), "-mp", str(MEDIA_PORT)),
            *("-m", str(self.calls), "-l", "50"),
            *("-timeout", f"{int(self.timeout)}s", "-nostdin"),
            *("-trace_msg", "-message_file", str(self.log), "-trace_err"),
            cwd=self.dir,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await asyncio.sleep(0.5)  # bound to its port before anyone dials
        if self._proc.returncode is not None:
            raise AssertionError(f"customer trunk SIPp exited at once ({self._proc.returncode})")
        return self

    @property
    def invites(self) -> list[Invite]:
        with contextlib.suppress(FileNotFoundError):
            return parse_invites(self.log.read_text(errors="replace"))
        return []

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()
