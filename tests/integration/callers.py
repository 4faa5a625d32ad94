"""SIPp caller scenarios written per test: pauses, key presses (RFC 4733 from SIPp's own DTMF
captures) and how the call ends, so each IVR test states its caller's behaviour in one line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PCAP_DIR = Path("/usr/share/sip-tester")


@dataclass(frozen=True)
class Pause:
    ms: int


@dataclass(frozen=True)
class Press:
    """Press keys one after another: each tone lasts ``tone_ms``, then ``gap_ms`` of silence."""

    keys: str
    tone_ms: int = 160
    gap_ms: int = 240


# RFC 4733 event codes.
_EVENT = {**{str(d): d for d in range(10)}, "*": 10, "#": 11, "A": 12, "B": 13, "C": 14, "D": 15}


class DtmfStream:
    """RFC 4733 key presses written as pcap files for SIPp's play_pcap_audio.

    SIPp replays a capture as it is, RTP sequence numbers and timestamps included, and
    Asterisk drops telephone-events that do not move forward (a retransmission, or an older
    packet). SIPp's own one-key captures were cut from one recording, so replaying them in an
    order other than 0,1,2,... loses keys. This writes every Press of a call as one stream
    whose sequence numbers and timestamps only grow, from call start to end.
    """

    def __init__(self) -> None:
        self.seq = 1000
        self.ts = 8000
        # Ethernet + IPv4 + UDP headers of SIPp's own capture: SIPp rewrites addresses, ports
        # and checksums, and every event packet has the same length, so one template fits all.
        sample = (PCAP_DIR / "dtmf_2833_1.pcap").read_bytes()
        self.header = sample[24 + 16 : 24 + 16 + 42]

    def write(self, path: Path, press: Press) -> float:
        """Write the pcap; return how long it plays, in seconds."""
        import struct

        out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        t = 0.0  # seconds from the first packet
        for key in press.keys:
            code = _EVENT[key]
            steps = max(1, press.tone_ms // 20)
            start_ts = self.ts
            for i in range(steps):
                duration = (i + 1) * 160
                out += self._packet(t + i * 0.02, code, False, duration, i == 0, start_ts)
            end_t = t + steps * 0.02
            for r in range(3):  # the end packet, sent three times as RFC 4733 advises
                out += self._packet(
                    end_t + r * 0.005, code, True, steps * 160, False, start_ts, same_seq=r > 0
                )
            t = end_t + (press.gap_ms / 1000.0)
            self.ts += int((press.tone_ms + press.gap_ms) * 8)
        path.write_bytes(bytes(out))
        return t

    def _packet(
        self,
        at: float,
        code: int,
        end: bool,
        duration: int,
        marker: bool,
        ts: int,
        *,
        same_seq: bool = False,
    ) -> bytes:
        import struct

        if not same_seq:
            self.seq = (self.seq + 1) & 0xFFFF
        rtp = struct.pack(">BBHII", 0x80, (0x80 if marker else 0) | 101, self.seq, ts, 0x5A4B0101)
        event = struct.pack(">BBH", code, (0x80 if end else 0) | 10, duration)
        frame = self.header + rtp + event
        sec = int(1_700_000_000 + at)
        usec = round((at % 1) * 1_000_000) % 1_000_000
        return struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame


Step = Pause | Press

_INVITE = """  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "sipp" <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 8 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
      a=sendrecv
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"/>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "sipp" <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
"""

# A desk phone calling (a feature code): Asterisk challenges the INVITE, the phone answers
# the challenge (SIPp's -au/-ap give the credentials), then the dialog goes on as a caller's.
_PHONE_INVITE = """  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "sipp" <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="401" auth="true"/>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      [last_Via:]
      From: "sipp" <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
""" + _INVITE.replace("CSeq: 1 INVITE", "CSeq: 2 INVITE\n      [authentication]").replace(
    "CSeq: 1 ACK", "CSeq: 2 ACK"
)

_WAIT_BYE = """  <recv request="BYE" timeout="{timeout_ms}"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Content-Length: 0
    ]]>
  </send>
"""

_SEND_BYE = """  <send retrans="500">
    <![CDATA[
      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "sipp" <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200" crlf="true"/>
"""


def caller_scenario(
    steps: list[Step],
    *,
    hang_up: bool,
    workdir: Path,
    bye_timeout_ms: int = 60000,
    caller: str = "sipp",
    phone: bool = False,
) -> str:
    """A SIPp UAC: answer, then ``steps``; then send BYE (``hang_up``) or wait for the far
    end's BYE. A BYE from the far end while steps are still running fails the call, which
    is what a test of "the caller hangs up first" wants."""
    body = [_PHONE_INVITE if phone else _INVITE]
    stream = DtmfStream()
    for n, step in enumerate(steps):
        if isinstance(step, Pause):
            body.append(f'  <pause milliseconds="{step.ms}"/>\n')
            continue
        pcap = workdir / f"keys-{n}.pcap"
        seconds = stream.write(pcap, step)
        body.append(
            f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n'
            f'  <pause milliseconds="{int(seconds * 1000) + 100}"/>\n'
        )
    bye = _SEND_BYE.replace("CSeq: 2 BYE", "CSeq: 3 BYE") if phone else _SEND_BYE
    body.append(bye if hang_up else _WAIT_BYE.format(timeout_ms=bye_timeout_ms))
    text = (
        '<?xml version="1.0" encoding="ISO-8859-1" ?>\n'
        '<!DOCTYPE scenario SYSTEM "sipp.dtd">\n'
        '<scenario name="scripted caller">\n' + "".join(body) + "</scenario>\n"
    )
    # The caller's number (the From user): a callback needs one it can dial.
    return text.replace('"sipp" <sip:sipp@', f'"{caller}" <sip:{caller}@')


def write_scenario(
    directory: Path,
    name: str,
    steps: list[Step],
    *,
    hang_up: bool,
    caller: str = "sipp",
    bye_timeout_ms: int = 60000,
    phone: bool = False,
) -> Path:
    """``phone``: the caller is a desk phone that must answer a digest challenge (run SIPp
    with ``-au``/``-ap``); ``caller`` is then its user name."""
    path = directory / f"{name}.xml"
    path.write_text(
        caller_scenario(
            steps,
            hang_up=hang_up,
            workdir=directory,
            caller=caller,
            bye_timeout_ms=bye_timeout_ms,
            phone=phone,
        )
    )
    return path
