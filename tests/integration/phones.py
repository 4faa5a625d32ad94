"""Agents' desk phones (and the customers trunk's far end) played by SIPp, for integration tests.

A phone registers from the very port it then listens on: the agents' endpoints have
``rewrite_contact=yes``, which makes Asterisk dial the REGISTER's source address, so SIPp's
registering UAC (``-m 1``, gone once registered) hands the port to the phone's UAS. Every INVITE
the phone receives is read back from SIPp's timestamped message log (``-trace_msg``), so tests
can say who was rung, when, and with which caller id.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType

_REGISTER = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="register">
  <send retrans="500"><![CDATA[
REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:[service]@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]>
Call-ID: [call_id]
CSeq: 1 REGISTER
Contact: <sip:[service]@[local_ip]:[local_port]>
Expires: {expires}
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="401" auth="true"/>
  <send retrans="500"><![CDATA[
REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:[service]@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]>
Call-ID: [call_id]
CSeq: 2 REGISTER
Contact: <sip:[service]@[local_ip]:[local_port]>
[authentication]
Expires: {expires}
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
</scenario>
"""

_REPLY = """  <send{retrans}><![CDATA[
SIP/2.0 {status}
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:phone@[local_ip]:[local_port];transport=[transport]>
{body}]]></send>
"""

_SDP = """Content-Type: application/sdp
Content-Length: [len]

v=0
o=phone 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
"""

_OK_IN_DIALOG = """  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
"""


# A re-INVITE of the phone's own (hold and resume): in-dialog, so Call-ID and both tags are the
# dialog's; Asterisk matches on those, so the Request-URI is simply Asterisk's address.
_REINVITE = """  <send retrans="500"><![CDATA[
INVITE sip:127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: [$ours]
To: [$theirs]
[last_Call-ID:]
CSeq: {cseq} INVITE
Contact: <sip:phone@[local_ip]:[local_port];transport=[transport]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=phone 53655765 {version} IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a={direction}
]]></send>
  <recv response="100" optional="true"/>
  <recv response="200"/>
  <send><![CDATA[
ACK sip:127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: [$ours]
To: [$theirs]
[last_Call-ID:]
CSeq: {cseq} ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
"""


def _reply(status: str, *, sdp: bool = False, retrans: bool = False) -> str:
    return _REPLY.format(
        status=status,
        retrans=' retrans="500"' if retrans else "",
        body=_SDP if sdp else "Content-Length: 0\n\n",
    )


def uas_scenario(
    behaviour: str, *, ring_ms: int = 0, hold_after_ms: int = 1000, hold_ms: int = 3000
) -> str:
    """One call of a phone: ``answer``, ``hold`` (answer, then put the call on hold for
    ``hold_ms`` and take it off), ``no_answer`` (rings until CANCEL) or ``busy`` (486)."""
    invite = '  <recv request="INVITE" crlf="true"/>\n'
    if behaviour == "hold":
        # The dialog's parties, for requests of our own: their From (with their tag) is our
        # To; our From is their To with the tag our answers carry. (SIPp refuses a scenario
        # that assigns a variable it never uses, so only this behaviour reads them.)
        invite = (
            '  <recv request="INVITE" crlf="true">\n'
            "    <action>\n"
            '      <ereg regexp="^.*$" search_in="hdr" header="From:" assign_to="theirs"/>\n'
            '      <ereg regexp="^.*$" search_in="hdr" header="To:" assign_to="to"/>\n'
            "    </action>\n"
            "  </recv>\n"
        )
    body = [invite, _reply("100 Trying")]
    if behaviour == "busy":
        body += [_reply("486 Busy Here", retrans=True), '  <recv request="ACK"/>\n']
    elif behaviour == "no_answer":
        body += [
            _reply("180 Ringing"),
            '  <recv request="CANCEL"/>\n',
            _OK_IN_DIALOG,
            _reply("487 Request Terminated"),
            '  <recv request="ACK"/>\n',
        ]
    elif behaviour in ("answer", "hold"):
        body += [_reply("180 Ringing")]
        if ring_ms:
            body.append(f'  <pause milliseconds="{ring_ms}"/>\n')
        # Then on the line until the far end hangs up (the engine, or the caller through it).
        body += [_reply("200 OK", sdp=True, retrans=True), '  <recv request="ACK" crlf="true"/>\n']
        if behaviour == "hold":
            body += [
                f'  <pause milliseconds="{hold_after_ms}"/>\n',
                _REINVITE.format(cseq=1, version=2353687638, direction="sendonly"),
                f'  <pause milliseconds="{hold_ms}"/>\n',
                _REINVITE.format(cseq=2, version=2353687639, direction="sendrecv"),
            ]
        body += ['  <recv request="BYE"/>\n', _OK_IN_DIALOG]
    else:
        raise ValueError(f"unknown phone behaviour {behaviour!r}")
    body.append('  <timewait milliseconds="1000"/>\n')
    return (
        '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<!DOCTYPE scenario SYSTEM "sipp.dtd">\n'
        f'<scenario name="phone {behaviour}">\n'
        + "".join(body).replace("[$ours]", "[$to];tag=[pid]SIPpTag01[call_number]")
        + "</scenario>\n"
    )


@dataclass(frozen=True)
class Invite:
    at: float  # wall clock (time.time()) when SIPp logged it
    user: str  # the Request-URI's user: who was dialled
    number: str  # the caller id number (From user)
    display: str
    call_id: str = ""


_STAMP = re.compile(r"^-{20,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)$", re.M)


def parse_invites(log: str) -> list[Invite]:
    """INVITEs received, from SIPp's -trace_msg log (each message follows a timestamp line).

    A retransmitted INVITE (same Call-ID and CSeq) counts once, at its first arrival.
    """
    out = []
    seen: set[tuple[str, str]] = set()
    parts = _STAMP.split(log)
    for i in range(1, len(parts) - 1, 2):
        stamp, msg = parts[i], parts[i + 1]
        if "message received" not in msg:
            continue
        start = msg.find("INVITE sip:")
        if start < 0 or "CSeq:" not in msg:
            continue
        text = msg[start:]
        cseq = re.search(r"^CSeq:\s*\d+\s+(\w+)", text, re.M)
        if cseq is None or cseq.group(1) != "INVITE" or not text.startswith("INVITE"):
            continue
        call_id = re.search(r"^Call-ID:\s*(\S+)", text, re.M | re.I)
        key = (call_id.group(1) if call_id else "", cseq.group(0))
        if key in seen:
            continue
        seen.add(key)
        ruri = re.match(r"INVITE sip:([^@;>\s]*)", text)
        frm = re.search(r'^From:\s*(?:"([^"]*)"\s*)?<?sip:([^@;>]*)', text, re.M)
        at = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").timestamp()
        out.append(
            Invite(
                at=at,
                user=ruri.group(1) if ruri else "",
                number=frm.group(2) if frm else "",
                display=(frm.group(1) or "") if frm else "",
                call_id=key[0],
            )
        )
    return out


class AgentPhone:
    """A desk phone (``endpoint``/``password`` registering) or a trunk's far end (no password)."""

    def __init__(self, endpoint: str, password: str, port: int, *, workdir: Path) -> None:
        self.endpoint = endpoint
        self.password = password
        self.port = port
        self.dir = workdir / f"phone-{endpoint}-{port}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self._uas: asyncio.subprocess.Process | None = None
        self._logs: list[Path] = []
        self._seen = 0

    async def __aenter__(self) -> AgentPhone:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
        if self.password:
            # Leave no registration behind for the next test's engine to see.
            with contextlib.suppress(Exception):
                await self.unregister()

    async def _run(self, scenario: Path, *extra: str, timeout: float = 10.0) -> None:
        proc = await asyncio.create_subprocess_exec(
            "sipp",
            "-sf",
            str(scenario),
            "127.0.0.1:5060",
            "-i",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            f"{int(timeout)}s",
            "-timeout_error",
            *extra,
            cwd=self.dir,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, err = await asyncio.wait_for(proc.communicate(), timeout + 5)
        except (TimeoutError, asyncio.CancelledError):
            proc.kill()
            await proc.wait()
            raise
        if proc.returncode != 0:
            raise AssertionError(f"{self.endpoint}: sipp {scenario.name} failed: {err[-500:]!r}")

    async def _registration(self, expires: int) -> None:
        if self._uas is not None:
            raise AssertionError("stop the phone before (un)registering: they share the port")
        path = self.dir / f"register-{expires}.xml"
        path.write_text(_REGISTER.format(expires=expires))
        await self._run(path, "-s", self.endpoint, "-au", self.endpoint, "-ap", self.password)

    async def register(self) -> None:
        await self._registration(3600)

    async def unregister(self) -> None:
        await self._registration(0)

    async def serve(
        self,
        behaviour: str,
        *,
        calls: int = 1,
        ring_ms: int = 0,
        hold_ms: int = 3000,
        timeout: float = 90.0,
    ) -> None:
        """Start answering (in the background) up to ``calls`` calls, one at a time."""
        await self.stop()
        n = len(self._logs)
        scenario = self.dir / f"uas-{behaviour}-{n}.xml"
        scenario.write_text(uas_scenario(behaviour, ring_ms=ring_ms, hold_ms=hold_ms))
        log = self.dir / f"messages-{n}.log"
        self._logs.append(log)
        self._uas = await asyncio.create_subprocess_exec(
            "sipp",
            "-sf",
            str(scenario),
            "-i",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-m",
            str(calls),
            "-l",
            "1",
            "-nostdin",
            "-timeout",
            f"{int(timeout)}s",
            "-trace_msg",
            "-message_file",
            str(log),
            "-trace_err",
            cwd=self.dir,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await asyncio.sleep(0.3)  # bound to its port before anyone calls

    async def stop(self) -> None:
        proc, self._uas = self._uas, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    @property
    def invites(self) -> list[Invite]:
        out: list[Invite] = []
        for log in self._logs:
            with contextlib.suppress(FileNotFoundError):
                out += parse_invites(log.read_text(errors="replace"))
        return out

    async def wait_invite(self, timeout: float, after: float | None = None) -> Invite:
        """The next INVITE not returned before (waits for it); with ``after`` (wall clock),
        the first one that arrived at or after that moment."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.invites
            if after is not None:
                later = [i for i in got if i.at >= after]
                if later:
                    self._seen = got.index(later[0]) + 1
                    return later[0]
            elif len(got) > self._seen:
                self._seen += 1
                return got[self._seen - 1]
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.endpoint}: no INVITE within {timeout}s")
            await asyncio.sleep(0.05)
