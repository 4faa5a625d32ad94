"""Agents' desk phones (and the customers trunk's far end) played by SIPp, for integration tests.

One ``AgentPhone`` per phone: it registers with a short-lived SIPp UAC
(``sipp/agent_register.xml``) whose Contact names the phone's own port, and answers calls with
a SIPp UAS on that port (``sipp/agent_{answer,hold,no_answer,busy}.xml``) for a bounded number
of calls. The agents' endpoints have ``rewrite_contact=no`` (asterisk/conf/pjsip.conf), so the
two SIPp processes need not share a port and a phone can register again while it rings.

Every INVITE the phone receives is read back from SIPp's timestamped message log
(``-trace_msg``): when it arrived (wall clock, as SIPp logged it on receipt), who was dialled,
the caller id Asterisk presented, and any X-/P- headers, so tests can say who was offered what
and when::

    async with AgentPhone("agent1001", "a1001", 5091, workdir=tmp_path) as phone:
        await phone.register()                  # ARI then reports the endpoint online
        await phone.serve(Answer(ring=0.5), calls=1)
        invite = await phone.wait_invite(10)
        assert invite.number == "0811110001"

Leaving the ``async with`` stops the UAS and unregisters, even when the test failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType

from tests.integration.harness import SIPP_DIR, ari_get

ASTERISK = "127.0.0.1:5060"
LOCAL_IP = "127.0.0.1"


# ---- what a phone does with a call ----------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """Ring for ``ring`` seconds, answer, play SIPp's g711a.pcap; then wait for the far end's
    BYE, or with ``hang_up_after`` hang up that many seconds after answering."""

    ring: float = 0.0
    hang_up_after: float | None = None


@dataclass(frozen=True)
class AnswerThenHold:
    """Answer (after ``ring`` s); ``hold_after`` s later hold from the phone (re-INVITE with
    a=sendonly), ``hold_for`` s later resume (a=sendrecv); then wait for the far end's BYE."""

    hold_after: float = 1.0
    hold_for: float = 3.0
    ring: float = 0.0


@dataclass(frozen=True)
class NoAnswer:
    """Ring (180) until the caller gives up with CANCEL: 200 to it, 487 to the INVITE."""


@dataclass(frozen=True)
class Busy:
    """Refuse every call with 486 Busy Here."""


Behaviour = Answer | AnswerThenHold | NoAnswer | Busy


def _ms(seconds: float) -> str:
    return str(max(0, round(seconds * 1000)))


def _behaviour_args(b: Behaviour) -> tuple[str, list[str]]:
    """The scenario file and its -set parameters (declared Global in the file; SIPp refuses
    to set a variable a scenario does not declare)."""
    if isinstance(b, Answer):
        talk = _ms(b.hang_up_after) if b.hang_up_after is not None else "0"
        return "agent_answer.xml", ["-set", "ring_ms", _ms(b.ring), "-set", "talk_ms", talk]
    if isinstance(b, AnswerThenHold):
        return "agent_hold.xml", [
            *("-set", "ring_ms", _ms(b.ring)),
            *("-set", "hold_after_ms", _ms(b.hold_after)),
            *("-set", "hold_ms", _ms(b.hold_for)),
        ]
    if isinstance(b, NoAnswer):
        return "agent_no_answer.xml", []
    return "agent_busy.xml", []


def _legacy(name: str, ring_ms: int, hold_ms: int) -> Behaviour:
    # The names the first ACD tests used; kept so they read as before.
    if name == "answer":
        return Answer(ring=ring_ms / 1000)
    if name == "hold":
        return AnswerThenHold(hold_after=1.0, hold_for=hold_ms / 1000, ring=ring_ms / 1000)
    if name == "no_answer":
        return NoAnswer()
    if name == "busy":
        return Busy()
    raise ValueError(f"unknown phone behaviour {name!r}")


# ---- INVITEs as SIPp logged them ----------------------------------------------------------


@dataclass(frozen=True)
class Invite:
    at: float  # wall clock (time.time() scale) when SIPp logged the INVITE's arrival
    user: str  # the Request-URI's user: who was dialled
    number: str  # the caller id number (the From user)
    display: str  # the caller id name (the From display name), "" when none
    call_id: str = ""
    # X-... and P-... headers (P-Asserted-Identity, custom X- headers), names as sent.
    headers: dict[str, str] = field(default_factory=dict)
    raw: str = field(default="", repr=False)


# SIPp's -trace_msg log: each message follows a line of dashes and a local-time timestamp.
_STAMP = re.compile(r"^-{20,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\s*$", re.M)
_FROM = re.compile(r'^(?:\s*"((?:[^"\\]|\\.)*)"|\s*([^<"]*?))\s*<?sips?:([^@;>]*)', re.S)


def _header_map(head: str) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for line in head.splitlines()[1:]:
        name, sep, value = line.partition(":")
        if sep:
            out.setdefault(name.strip().lower(), []).append((name.strip(), value.strip()))
    return out


def parse_invites(log: str) -> list[Invite]:
    """The INVITEs (initial ones: no To tag) received, from a SIPp ``-trace_msg`` log.

    A retransmitted INVITE (same Call-ID and CSeq) counts once, at its first arrival.
    """
    out: list[Invite] = []
    seen: set[tuple[str, str]] = set()
    parts = _STAMP.split(log)
    for i in range(1, len(parts) - 1, 2):
        stamp, block = parts[i], parts[i + 1]
        first, _, message = block.lstrip("\n").partition("\n")
        if "message received" not in first:
            continue
        message = message.lstrip("\r\n")
        if not message.startswith("INVITE "):
            continue
        head = re.split(r"\r?\n\r?\n", message, maxsplit=1)[0]
        h = _header_map(head)

        def one(name: str, h: dict[str, list[tuple[str, str]]] = h) -> str:
            return h[name][0][1] if name in h else ""

        if ";tag=" in one("to"):
            continue  # a re-INVITE within a call, not an offer
        key = (one("call-id"), one("cseq"))
        if key in seen:
            continue
        seen.add(key)
        ruri = re.match(r"INVITE\s+sips?:([^@;>\s]*)@", head)
        frm = _FROM.match(one("from"))
        display = ""
        if frm:
            display = frm.group(1) if frm.group(1) is not None else (frm.group(2) or "")
            display = display.replace('\\"', '"').strip()
        extra = {
            name: value
            for values in h.values()
            for name, value in values
            if name.lower().startswith(("x-", "p-"))
        }
        out.append(
            Invite(
                at=datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").timestamp(),
                user=ruri.group(1) if ruri else "",
                number=frm.group(3) if frm else "",
                display=display,
                call_id=key[0],
                headers=extra,
                raw=message,
            )
        )
    return out


# ---- the phone ------------------------------------------------------------------------------


def _free_udp_port() -> int:
    # Registering from a port of the kernel's choosing (32768 and up): SIPp without -p takes
    # the first free port from 5060 up, which could be 5070 or 5080, where Asterisk's identify
    # sections would take the REGISTER for the carrier's or the customers' trunk.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LOCAL_IP, 0))
        port: int = s.getsockname()[1]
        return port


async def _reap(proc: asyncio.subprocess.Process, grace: float = 3.0) -> None:
    """End a SIPp we started (its PID only): SIGTERM, then SIGKILL if it lingers."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


class AgentPhone:
    """A desk phone (``endpoint``/``password``, registers) or a trunk's far end (``password``
    empty: answers on ``port`` and never registers)."""

    def __init__(
        self,
        endpoint: str,
        password: str,
        port: int,
        *,
        workdir: Path,
        register_timeout: float = 10,
    ) -> None:
        self.endpoint = endpoint
        self.password = password
        self.port = port
        # RTP of this phone's SIPp: distinct per phone (several run at once), outside
        # Asterisk's 10000-10999; SIPp also takes the port + 2 (video), hence the stride of 4.
        self.media_port = 20000 + 4 * (port % 1000)
        self.dir = workdir / f"phone-{endpoint}-{port}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.register_timeout = register_timeout
        self.registered = False
        self._uas: asyncio.subprocess.Process | None = None
        self._logs: list[Path] = []
        self._seen = 0
        self._runs = 0

    async def __aenter__(self) -> AgentPhone:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.stop()
        finally:
            if self.password and self.registered:
                # Leave no registration behind for the next test's engine to see.
                with contextlib.suppress(Exception):
                    await self.unregister(wait=False)

    # -- registration ------------------------------------------------------------------------

    async def register(self, *, expires: int = 3600, wait: bool = True) -> None:
        """REGISTER (answering the digest challenge); with ``wait``, until ARI reports the
        endpoint online."""
        await self._register(expires)
        self.registered = True
        if wait:
            await self.wait_state("online", 5)

    async def unregister(self, *, wait: bool = True) -> None:
        """REGISTER with Expires: 0; with ``wait``, until ARI reports the endpoint offline."""
        await self._register(0)
        self.registered = False
        if wait:
            await self.wait_state("offline", 5)

    async def _register(self, expires: int) -> None:
        if not self.password:
            raise AssertionError(f"{self.endpoint}: a trunk's far end does not register")
        self._runs += 1
        timeout = self.register_timeout
        proc = await asyncio.create_subprocess_exec(
            "sipp",
            *("-sf", str(SIPP_DIR / "agent_register.xml"), ASTERISK),
            *("-i", LOCAL_IP, "-p", str(_free_udp_port()), "-m", "1"),
            *("-s", self.endpoint, "-au", self.endpoint, "-ap", self.password),
            *("-key", "contact_port", str(self.port), "-key", "expires", str(expires)),
            *("-timeout", f"{int(timeout)}s", "-timeout_error", "-nostdin"),
            *("-trace_msg", "-message_file", str(self.dir / f"register-{self._runs}.log")),
            cwd=self.dir,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, err = await asyncio.wait_for(proc.communicate(), timeout + 5)
        finally:
            await _reap(proc)  # on a timeout or a cancelled test too
        if proc.returncode != 0:
            raise AssertionError(
                f"{self.endpoint}: REGISTER (expires {expires}) failed, sipp exit "
                f"{proc.returncode}: {err.decode(errors='replace')[-500:]}"
            )

    async def endpoint_state(self) -> str:
        """ARI's view of the endpoint: "online" when a contact is registered, else "offline"."""
        body = await asyncio.to_thread(ari_get, f"/endpoints/PJSIP/{self.endpoint}")
        return str(body["state"])

    async def wait_state(self, state: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while (now := await self.endpoint_state()) != state:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.endpoint}: ARI says {now!r}, not {state!r}")
            await asyncio.sleep(0.05)

    # -- answering calls ---------------------------------------------------------------------

    async def serve(
        self,
        behaviour: Behaviour | str = Answer(),
        *,
        calls: int = 1,
        timeout: float = 90.0,
        ring_ms: int = 0,
        hold_ms: int = 3000,
    ) -> None:
        """Take up to ``calls`` calls, one at a time, in the background (a SIPp UAS on this
        phone's port), each as ``behaviour`` says; a phone already serving is stopped first.
        SIPp exits after ``calls`` calls or ``timeout`` seconds, whichever comes first.
        (``ring_ms``/``hold_ms`` only apply to the behaviour names "answer", "hold",
        "no_answer" and "busy".)"""
        await self.stop()
        b = _legacy(behaviour, ring_ms, hold_ms) if isinstance(behaviour, str) else behaviour
        scenario, params = _behaviour_args(b)
        self._runs += 1
        log = self.dir / f"uas-{self._runs}-{scenario.removesuffix('.xml')}.log"
        self._logs.append(log)
        self._uas = await asyncio.create_subprocess_exec(
            "sipp",
            *("-sf", str(SIPP_DIR / scenario), *params),
            *("-i", LOCAL_IP, "-p", str(self.port), "-mp", str(self.media_port)),
            *("-m", str(calls), "-l", "1"),
            *("-timeout", f"{int(timeout)}s", "-nostdin"),
            *("-trace_msg", "-message_file", str(log), "-trace_err"),
            cwd=self.dir,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        # Listening before anyone calls: SIPp writes its message log's first line only when a
        # message comes, so wait for the port to be taken instead.
        deadline = time.monotonic() + 5
        while not _port_taken(self.port):
            if self._uas.returncode is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.endpoint}: SIPp did not start listening on {self.port} "
                    f"(exit {self._uas.returncode}; see {self.dir})"
                )
            await asyncio.sleep(0.02)

    async def finish(self, timeout: float) -> int:
        """Wait for the UAS to end by itself (its ``calls`` done); SIPp's exit status: 0 when
        every call went as the scenario says, 1 when some failed."""
        proc = self._uas
        if proc is None:
            raise AssertionError(f"{self.endpoint}: not serving")
        try:
            return await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"{self.endpoint}: phone still busy after {timeout}s") from None

    async def stop(self) -> None:
        proc, self._uas = self._uas, None
        if proc is not None:
            await _reap(proc)

    # -- what it was offered -----------------------------------------------------------------

    @property
    def invites(self) -> list[Invite]:
        """Every call offered to this phone so far (across ``serve`` runs), in arrival order."""
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
            await asyncio.sleep(0.02)


def _port_taken(port: int) -> bool:
    # Read from the kernel's table, not probed with a bind of our own: that could take the
    # port from SIPp for an instant, just as it binds.
    try:
        table = Path("/proc/net/udp").read_text()
    except OSError:
        return True  # no procfs: assume it is up rather than fail
    return any(
        fields[1].rpartition(":")[2] == f"{port:04X}"
        for fields in (line.split() for line in table.splitlines()[1:])
        if len(fields) > 1
    )
