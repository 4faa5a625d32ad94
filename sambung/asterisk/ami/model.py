"""Typed AMI values: what the engine sees instead of panoramisk's untyped ``Message``.

Field names follow what Asterisk 22 actually sends (``main/manager.c``,
``res/res_pjsip/pjsip_options.c``); quirks are noted where they bite.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

HeaderValue = str | tuple[str, ...]

_ERROR_RESPONSES = frozenset({"error", "fail", "failure"})


@dataclass(frozen=True, slots=True)
class AmiMessage:
    """One AMI response or event.

    Header names are case-insensitive in AMI, so they are stored lower-cased. A header that
    appears several times (``ChanVariable``, ``Variable``) keeps all its values in order.
    """

    headers: Mapping[str, HeaderValue] = field(default_factory=dict)
    content: str = ""  # the free text of a "Response: Follows" (CLI output)

    @classmethod
    def from_headers(
        cls, headers: Mapping[str, str | Sequence[str]], content: str = ""
    ) -> AmiMessage:
        norm: dict[str, HeaderValue] = {}
        for key, value in headers.items():
            norm[key.lower()] = value if isinstance(value, str) else tuple(value)
        return cls(norm, content)

    def get(self, key: str, default: str = "") -> str:
        """The header's value; the first one when it was sent several times."""
        value = self.headers.get(key.lower())
        if value is None:
            return default
        if isinstance(value, tuple):
            return value[0] if value else default
        return value

    def get_all(self, key: str) -> tuple[str, ...]:
        value = self.headers.get(key.lower())
        if value is None:
            return ()
        return value if isinstance(value, tuple) else (value,)

    @property
    def event(self) -> str:
        return self.get("Event")

    @property
    def response(self) -> str:
        return self.get("Response")

    @property
    def action_id(self) -> str:
        return self.get("ActionID")

    @property
    def message(self) -> str:
        # Some Asterisk errors carry a trailing newline ("No Contacts found\n").
        return self.get("Message").strip()

    @property
    def is_error(self) -> bool:
        return self.response.lower() in _ERROR_RESPONSES


def _int(value: str, default: int = 0) -> int:
    try:
        return int(value)
    except ValueError:
        return default


@dataclass(frozen=True, slots=True)
class FullyBooted:
    """Asterisk is up and has loaded its modules.

    Sent right after our Login when Asterisk is already booted (``main/manager.c``
    ``action_login``), and after a restart once boot completes. So it arrives on every AMI
    (re)connect: the engine uses it to register the Stasis app again and reconcile. A small
    ``uptime_seconds`` means Asterisk itself restarted, not just our connection.
    """

    uptime_seconds: int
    last_reload_seconds: int
    status: str

    @classmethod
    def from_message(cls, msg: AmiMessage) -> FullyBooted:
        return cls(
            uptime_seconds=_int(msg.get("Uptime")),
            last_reload_seconds=_int(msg.get("LastReload")),
            status=msg.get("Status"),
        )


@dataclass(frozen=True, slots=True)
class PjsipContact:
    """One PJSIP contact and its qualify status.

    ``status`` is Reachable, Unreachable, NonQualified or Unknown. ``roundtrip_usec`` is None
    unless the contact is Reachable (Asterisk sends "N/A").

    Two sources, because Asterisk 22's ``PJSIPShowContacts`` lists only REGISTERed contacts
    (it reads sorcery's contact store; checked on 22.10.1: a trunk's ``contact=`` line is shown
    by ``pjsip show contacts`` on the CLI but not by the AMI action, which answers "No Contacts
    found" when there are only static ones):

    - ``from_message``: a ``ContactList`` item of ``PJSIPShowContacts``. ``aor`` comes from the
      object name, ``<aor>;@<hash>`` (registered) or ``<aor>@@<hash>`` (static).
    - ``from_status_detail``: a ``ContactStatusDetail`` item of ``PJSIPShowEndpoint``, which
      does include static contacts, with the endpoint's name.
    """

    endpoint: str
    aor: str
    uri: str
    status: str
    roundtrip_usec: int | None

    @classmethod
    def from_message(cls, msg: AmiMessage) -> PjsipContact:
        name = msg.get("ObjectName")
        aor = name
        for sep in (";@", "@@"):
            if sep in name:
                aor = name.split(sep, 1)[0]
                break
        rtt = msg.get("RoundtripUsec")
        return cls(
            endpoint=msg.get("Endpoint"),
            aor=aor,
            uri=msg.get("Uri"),
            status=msg.get("Status"),
            roundtrip_usec=int(rtt) if rtt.isdigit() else None,
        )

    @classmethod
    def from_status_detail(cls, msg: AmiMessage) -> PjsipContact:
        rtt = msg.get("RoundtripUsec")
        return cls(
            endpoint=msg.get("EndpointName"),
            aor=msg.get("AOR"),
            uri=msg.get("URI"),
            status=msg.get("Status"),
            roundtrip_usec=int(rtt) if rtt.isdigit() else None,
        )


def _duration_seconds(text: str) -> int:
    """CoreShowChannel's Duration is ``HH:MM:SS`` (hours may exceed 24)."""
    parts = text.split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return 0
    h, m, s = (int(p) for p in parts)
    return h * 3600 + m * 60 + s


@dataclass(frozen=True, slots=True)
class CoreChannel:
    """One ``CoreShowChannel`` item of ``CoreShowChannels``: a second opinion next to ARI's
    ``GET /channels`` when reconciling (it also lists channels that are not in Stasis)."""

    channel: str
    uniqueid: str
    linkedid: str
    state: str
    caller_id_num: str
    context: str
    exten: str
    application: str
    application_data: str
    duration_seconds: int
    bridge_id: str

    @classmethod
    def from_message(cls, msg: AmiMessage) -> CoreChannel:
        return cls(
            channel=msg.get("Channel"),
            uniqueid=msg.get("Uniqueid"),
            linkedid=msg.get("Linkedid"),
            state=msg.get("ChannelStateDesc"),
            caller_id_num=msg.get("CallerIDNum"),
            context=msg.get("Context"),
            exten=msg.get("Exten"),
            application=msg.get("Application"),
            application_data=msg.get("ApplicationData"),
            duration_seconds=_duration_seconds(msg.get("Duration")),
            bridge_id=msg.get("BridgeId"),
        )
