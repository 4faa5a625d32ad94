"""SIPp caller scenarios written per test: pauses, key presses (RFC 4733 from SIPp's own DTMF
captures) and how the call ends, so each IVR test states its caller's behaviour in one line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PCAP_DIR = Path("/usr/share/sip-tester")
_PCAP_NAME = {"*": "star", "#": "pound"}


@dataclass(frozen=True)
class Pause:
    ms: int


@dataclass(frozen=True)
class Press:
    """Press keys one after another; each tone is ~250 ms, then ``gap_ms`` of silence."""

    keys: str
    gap_ms: int = 350


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


def caller_scenario(steps: list[Step], *, hang_up: bool, bye_timeout_ms: int = 60000) -> str:
    """A SIPp UAC: answer, then ``steps``; then send BYE (``hang_up``) or wait for the far
    end's BYE. A BYE from the far end while steps are still running fails the call, which
    is what a test of "the caller hangs up first" wants."""
    body = [_INVITE]
    for step in steps:
        if isinstance(step, Pause):
            body.append(f'  <pause milliseconds="{step.ms}"/>\n')
            continue
        for key in step.keys:
            name = _PCAP_NAME.get(key, key)
            pcap = PCAP_DIR / f"dtmf_2833_{name}.pcap"
            body.append(
                f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n'
                f'  <pause milliseconds="{250 + step.gap_ms}"/>\n'
            )
    body.append(_SEND_BYE if hang_up else _WAIT_BYE.format(timeout_ms=bye_timeout_ms))
    return (
        '<?xml version="1.0" encoding="ISO-8859-1" ?>\n'
        '<!DOCTYPE scenario SYSTEM "sipp.dtd">\n'
        '<scenario name="scripted caller">\n' + "".join(body) + "</scenario>\n"
    )


def write_scenario(directory: Path, name: str, steps: list[Step], *, hang_up: bool) -> Path:
    path = directory / f"{name}.xml"
    path.write_text(caller_scenario(steps, hang_up=hang_up))
    return path
