"""Record what the real Asterisk sends our Stasis app during one scripted call.

Usage (the sandbox must be up: ``ops/sandbox up``)::

    python scripts/capture_ari.py inbound_caller_bye
    python scripts/capture_ari.py --all

Each scenario starts a SIPp caller (tests/fixtures/ari/sipp/*.xml) on the trunk, answers the
call when ``StasisStart`` arrives, plays a prompt, then either waits for the caller to hang up
or hangs up itself, and writes every event JSON the app received, exactly as received, to
``tests/fixtures/ari/<scenario>.jsonl`` (one object a line; the first line is a
``{"_comment": ...}`` saying how it was captured). No event filter is set, so the capture also
holds the noisy events the engine filters out. It keeps listening for ``--linger`` seconds after
the channel is gone, to show events that arrive late (or do not arrive at all).

The engine must not be running against the same app at the same time: one app, one socket
(the other would get ApplicationReplaced).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from sambung.asterisk.ari.client import AriClient  # noqa: E402
from sambung.asterisk.ari.errors import AriNotFound  # noqa: E402

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "ari"
SIPP_DIR = FIXTURES / "sipp"


class Interrupted(Exception):
    """The capture is not clean; run it again."""


@dataclass(frozen=True)
class Scenario:
    sipp: str
    media: tuple[str, ...]
    app_hangs_up: bool
    story: str
    did: str = "1500"
    # Also subscribe the app to the channel itself (eventSource channel:<id>) at StasisStart.
    subscribe_channel: bool = False


SCENARIOS = {
    "inbound_caller_bye": Scenario(
        "uac_bye.xml",
        ("sound:hello-world",),
        app_hangs_up=False,
        story="the app answered and played sound:hello-world; the caller sent BYE 4 s after "
        "the answer, after the prompt had finished",
    ),
    "inbound_app_hangup": Scenario(
        "uac_wait_bye.xml",
        ("sound:hello-world",),
        app_hangs_up=True,
        story="the app answered, played sound:hello-world and on PlaybackFinished hung up "
        "with DELETE /channels/{id} (reason normal); the caller answered Asterisk's BYE",
    ),
    "inbound_dtmf": Scenario(
        "uac_dtmf.xml",
        ("sound:hello-world",),
        app_hangs_up=False,
        story="the app answered and played sound:hello-world; the caller sent digit 1 as "
        "RFC 4733 (SIPp play_pcap_audio dtmf_2833_1.pcap) 2.5 s after the answer, then BYE",
    ),
    "inbound_playback_failed": Scenario(
        "uac_wait_bye.xml",
        ("sound:no-such-file",),
        app_hangs_up=True,
        story="the app answered and played sound:no-such-file (missing: PlaybackFinished "
        "state failed), then hung up with DELETE /channels/{id}",
    ),
    "inbound_caller_bye_during_playback": Scenario(
        "uac_bye_early.xml",
        ("sound:demo-congrats",),
        app_hangs_up=False,
        story="the app answered and played the long sound:demo-congrats; the caller sent BYE "
        "1 s after the answer, while the prompt was still playing",
    ),
    "inbound_caller_bye_subscribed": Scenario(
        "uac_bye.xml",
        ("sound:hello-world",),
        app_hangs_up=False,
        subscribe_channel=True,
        story="as inbound_caller_bye, but at StasisStart the app also subscribed to the "
        "channel (POST /applications/sambung/subscription eventSource=channel:<id>)",
    ),
    "inbound_app_hangup_subscribed": Scenario(
        "uac_wait_bye.xml",
        ("sound:hello-world",),
        app_hangs_up=True,
        subscribe_channel=True,
        story="as inbound_app_hangup, but at StasisStart the app also subscribed to the "
        "channel (POST /applications/sambung/subscription eventSource=channel:<id>)",
    ),
}


async def capture(
    name: str,
    scenario: Scenario,
    *,
    url: str,
    user: str,
    password: str,
    app: str,
    linger: float,
    timeout: float,
) -> tuple[str, list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session:
        client = AriClient(session, url, user, password, app)
        info = await client.asterisk_info()
        # One app, one socket: connecting would take the app from a running engine (it would
        # get ApplicationReplaced), so refuse while someone holds it.
        held = await client.request("GET", "/applications")
        if any(a.get("name") == app for a in held or []):
            raise SystemExit(f"app {app!r} is registered by another client; stop it first")
        ws_url = "ws" + client.base_url.removeprefix("http") + "/events"
        async with session.ws_connect(
            ws_url,
            params={"app": app, "subscribeAll": "false"},
            headers=client.auth_headers,
            heartbeat=5.0,
        ) as ws:
            await client.get_application()
            await client.set_event_filter()  # capture everything the app can receive
            queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

            async def read() -> None:
                async for msg in ws:
                    if msg.type is aiohttp.WSMsgType.TEXT:
                        data = json.loads(msg.data)
                        events.append(data)
                        queue.put_nowait(data)
                queue.put_nowait(None)

            async with asyncio.TaskGroup() as tg:
                reader = tg.create_task(read())
                sipp = await asyncio.create_subprocess_exec(
                    "sipp",
                    "-sf",
                    str(SIPP_DIR / scenario.sipp),
                    "-s",
                    scenario.did,
                    "127.0.0.1:5060",
                    "-i",
                    "127.0.0.1",
                    "-p",
                    "5070",
                    "-m",
                    "1",
                    "-l",
                    "1",
                    "-timeout",
                    f"{int(timeout)}s",
                    "-timeout_error",
                    "-nostdin",
                    cwd="/tmp",
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT,
                    stdin=asyncio.subprocess.DEVNULL,
                )
                try:
                    await asyncio.wait_for(drive(client, queue, scenario, linger), timeout)
                finally:
                    try:
                        out, _ = await asyncio.wait_for(sipp.communicate(), 15)
                    except TimeoutError:
                        sipp.kill()
                        out, _ = await sipp.communicate()
                    await ws.close()
                    reader.cancel()
    note = ""
    replaced = [i for i, e in enumerate(events) if e.get("type") == "ApplicationReplaced"]
    if replaced:
        del events[replaced[0] :]
        note = " Listening stopped early: another client registered the app after the call."
    sipp_ok = sipp.returncode == 0
    comment = (
        f"Captured {datetime.now(UTC):%Y-%m-%d} from Asterisk {info.version} "
        f"(ARI {url}, app {app}) by scripts/capture_ari.py {name}: SIPp "
        f"tests/fixtures/ari/sipp/{scenario.sipp} called {scenario.did} on the trunk from "
        f"127.0.0.1:5070; {scenario.story}. No event filter; events exactly as received, "
        f"in order. SIPp exit {sipp.returncode}{'' if sipp_ok else ' (see stderr)'}.{note}"
    )
    if not sipp_ok:
        print(out.decode(errors="replace")[-2000:], file=sys.stderr)
    return comment, events


def write_capture(path: Path, comment: str, events: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        fh.write(json.dumps({"_comment": comment}) + "\n")
        for data in events:
            fh.write(json.dumps(data) + "\n")


async def drive(
    client: AriClient,
    queue: asyncio.Queue[dict[str, Any] | None],
    scenario: Scenario,
    linger: float,
) -> None:
    """Answer, play, hang up (or not), and stop ``linger`` s after the channel is gone."""
    channel_id = ""
    playback_id = ""
    deadline: float | None = None
    ended = False
    loop = asyncio.get_running_loop()
    while True:
        remaining = None if deadline is None else deadline - loop.time()
        if remaining is not None and remaining <= 0:
            return
        try:
            data = await asyncio.wait_for(queue.get(), remaining)
        except TimeoutError:
            return
        if data is None:
            return
        kind = data.get("type")
        channel = data.get("channel") or {}
        print(f"{data.get('timestamp')} {kind} {channel.get('id', '')}", file=sys.stderr)
        if kind == "ApplicationReplaced":
            # Another client (an engine under test) took the app from us on the shared sandbox.
            if not ended:
                raise Interrupted("another client registered the app during the call")
            return
        if kind == "StasisStart" and not channel_id and data.get("args", [""])[0] == "inbound":
            channel_id = channel["id"]
            playback_id = f"{channel_id}-prompt-1"
            if scenario.subscribe_channel:
                await client.subscribe([f"channel:{channel_id}"])
            await client.answer(channel_id)
            await client.play(channel_id, playback_id, scenario.media)
        elif kind == "PlaybackFinished" and data["playback"]["id"] == playback_id:
            if scenario.app_hangs_up:
                with contextlib.suppress(AriNotFound):
                    await client.hangup(channel_id)
        elif kind == "StasisEnd" and channel.get("id") == channel_id and deadline is None:
            ended = True
            # If ChannelDestroyed never comes, the linger after StasisEnd shows that.
            deadline = loop.time() + linger + 2.0
        elif kind == "ChannelDestroyed" and channel.get("id") == channel_id:
            deadline = loop.time() + linger


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Record ARI events from the real Asterisk.")
    parser.add_argument("scenario", nargs="*", help=", ".join(SCENARIOS))
    parser.add_argument("--all", action="store_true", help="run every scenario")
    parser.add_argument("--url", default="http://127.0.0.1:8088")
    parser.add_argument("--user", default="sambung")
    parser.add_argument("--password", default="sambung-dev-secret")
    parser.add_argument("--app", default="sambung")
    parser.add_argument("--linger", type=float, default=2.0)
    parser.add_argument("--timeout", type=float, default=40.0)
    parser.add_argument("--out", type=Path, default=FIXTURES)
    parser.add_argument("--attempts", type=int, default=5, help="retries of an interrupted one")
    args = parser.parse_args(argv)
    names = list(SCENARIOS) if args.all else args.scenario
    if not names:
        parser.error("name a scenario or pass --all")
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; known: {', '.join(SCENARIOS)}")
    for name in names:
        for attempt in range(1, args.attempts + 1):
            try:
                comment, events = asyncio.run(
                    capture(
                        name,
                        SCENARIOS[name],
                        url=args.url,
                        user=args.user,
                        password=args.password,
                        app=args.app,
                        linger=args.linger,
                        timeout=args.timeout,
                    )
                )
                break
            except* Interrupted as group:
                print(f"{name}: attempt {attempt}: {group.exceptions[0]}", file=sys.stderr)
                time.sleep(5)
        else:
            print(f"{name}: no clean capture in {args.attempts} attempts", file=sys.stderr)
            return 1
        path = args.out / f"{name}.jsonl"
        write_capture(path, comment, events)
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
