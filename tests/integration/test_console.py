"""The agent console and the wallboard in headless Chromium, against the real Asterisk.

A SIPp caller dials an IVR, keys an account number and is handed to the collections queue;
a supervisor watches the queue's waiting figure move on the wallboard; the agent, logged in
through the console, goes ready, answers on their SIPp desk phone, sees what the caller keyed
(and the CRM lookup) on the call card, and records a promise to pay that must land in
PostgreSQL with its amount and date. Screenshots of each step are kept in
test-artifacts/console/.
"""

from __future__ import annotations

import asyncio
import re
from datetime import date, timedelta
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Page, expect

from sambung.auth.model import Role
from sambung.ivr.flows import FlowTable
from sambung.ivr.model import Flow, InputNode, LookupNode, Node, Retry, TransferNode
from tests.integration.browser import chromium, shot
from tests.integration.callers import Pause, Press, write_scenario
from tests.integration.customers import CustomerTrunk
from tests.integration.harness import RunningEngine, running_engine, sipp
from tests.integration.phones import AgentPhone, Answer
from tests.integration.test_acd import Api
from tests.integration.test_dialer import CAMPAIGN as DIALER_CAMPAIGN
from tests.integration.test_dialer import csv_for, import_list
from tests.integration.test_dialer import sections as dialer_sections

pytestmark = pytest.mark.integration

DID = "1503"
ACCOUNT = "12345678"  # Budi Santoso in the stand-in CRM, Rp 1.250.000 due
AGENT_PASSWORD = "siti-console-pass"
SUPERVISOR_PASSWORD = "sari-wallboard-pass"
TIMEOUT_MS = 20_000


def account_flow(crm_url: str) -> Flow:
    """Key the account number, look it up, wait for an agent in the collections queue."""
    retry = Retry(2, ("sound:vm-sorry",), ("sound:pbx-invalid",), "agent")
    nodes: list[Node] = [
        InputNode(
            "acct",
            ("sound:beep",),
            "account",
            "lookup",
            min_length=6,
            max_length=10,
            terminator="#",
            first_digit_timeout_seconds=6.0,
            inter_digit_timeout_seconds=3.0,
            pattern="[0-9]+",
            retry=retry,
        ),
        LookupNode(
            "lookup",
            crm_url + "/accounts/{account}",
            "agent",
            "agent",
            timeout_seconds=2.0,
            store_prefix="crm_",
        ),
        TransferNode("agent", "collections", ()),
    ]
    return Flow(
        name="console-test",
        dids=(DID,),
        start="acct",
        nodes=tuple((n.id, n) for n in nodes),
        default_language="en",
        languages=("en",),
        calendars=(),
        zero_out_key=None,
        zero_out_target=None,
        source="tests/integration/test_console.py",
        version="test-v1",
    )


async def log_in(page: Page, base: str, username: str, password: str) -> None:
    await page.goto(f"{base}/console/login")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("#login-submit")


async def test_agent_takes_an_ivr_call_and_records_a_promise_while_the_wallboard_follows(
    crm: str, tmp_path: Path
) -> None:
    async with (
        running_engine() as run,
        AgentPhone("agent1001", "a1001", 5091, workdir=tmp_path) as phone,
        AgentPhone("supervisor1", "s1001", 5096, workdir=tmp_path / "sari") as sari_phone,
        chromium() as browser,
    ):
        run.engine.ivr.flows = FlowTable({DID: account_flow(crm)})
        auth = run.engine.auth
        assert auth is not None
        await auth.create_user("siti", AGENT_PASSWORD, Role.AGENT, "siti", "Siti", "en")
        await auth.create_user("sari", SUPERVISOR_PASSWORD, Role.SUPERVISOR, None, "Sari", "en")
        base = f"http://127.0.0.1:{run.engine.http_port}"
        await phone.register()
        await phone.serve(Answer(ring=0.5), calls=1)
        await sari_phone.register()
        await sari_phone.serve(Answer(ring=0.0), calls=1)

        # The supervisor's wallboard: nobody waiting yet.
        boss = await (await browser.new_context()).new_page()
        await log_in(boss, base, "sari", SUPERVISOR_PASSWORD)
        await expect(boss).to_have_url(f"{base}/console/wallboard")
        waiting = boss.locator('#queues tr[data-queue="collections"] td[data-field="waiting"]')
        await expect(waiting).to_have_text("0", timeout=TIMEOUT_MS)

        # The agent logs in and starts the shift, but is paused: the caller must wait.
        agent = await (await browser.new_context()).new_page()
        await log_in(agent, base, "siti", AGENT_PASSWORD)
        await expect(agent).to_have_url(f"{base}/console/agent")
        await agent.click("#action-login")
        state = agent.locator("#agent-state")
        await expect(state).not_to_have_attribute("data-state", "logged_out", timeout=TIMEOUT_MS)
        if await state.get_attribute("data-state") != "paused":
            await agent.click("#action-pause")
        await expect(state).to_have_attribute("data-state", "paused", timeout=TIMEOUT_MS)
        await shot(agent, "01-agent-logged-in-paused")

        # The caller keys the account, is looked up, and queues.
        steps: list[Pause | Press] = [Pause(1200), Press(ACCOUNT + "#"), Pause(30_000)]
        scenario = write_scenario(tmp_path, "console", steps, hang_up=True, caller="0811223344")
        caller = asyncio.create_task(sipp(scenario, DID, timeout=90))
        try:
            await expect(waiting).to_have_text("1", timeout=TIMEOUT_MS)
            await shot(boss, "02-wallboard-one-waiting")

            # Ready: the call is offered, the desk phone answers, the card shows the input.
            await agent.click("#action-ready")
            card = agent.locator("#call-card")
            await expect(card).to_have_attribute(
                "class", "call-card phase-connected", timeout=TIMEOUT_MS
            )
            await expect(agent.locator('#card-ivr dd[data-key="account"]')).to_have_text(ACCOUNT)
            await expect(agent.locator('#card-lookup dd[data-key="name"]')).to_have_text(
                "Budi Santoso"
            )
            await expect(agent.locator('#card-lookup dd[data-key="amount_due"]')).to_have_text(
                "Rp 1.250.000"
            )
            await expect(agent.locator("#card-caller")).to_contain_text("0811223344")
            await expect(state).to_have_attribute("data-state", "on_call")
            await shot(agent, "03-agent-call-card")
            await expect(waiting).to_have_text("0", timeout=TIMEOUT_MS)
            await expect(
                boss.locator('#agents tr[data-agent="siti"] td[data-field="state"]')
            ).to_contain_text("On call", timeout=TIMEOUT_MS)
            await shot(boss, "04-wallboard-agent-on-call")

            # Listen from the wallboard: the supervisor's own desk phone rings.
            siti_row = boss.locator('#agents tr[data-agent="siti"]')
            await siti_row.get_by_role("button", name="Listen").click()
            await expect(boss.locator("#toast")).to_contain_text("listen siti", timeout=TIMEOUT_MS)
            invite = await sari_phone.wait_invite(10)
            assert invite.user == "supervisor1"

            # A promise without its date is refused by the form; with it, it is saved.
            await agent.select_option("#disposition-code", "ptp")
            await expect(agent.locator("#disposition-date")).to_be_visible()
            await agent.fill("#disposition-amount", "500.000")  # as Indonesians write it
            await agent.fill("#disposition-note", "will pay on Friday")
            await agent.click("#disposition-submit")
            assert await agent.locator("#disposition-form").count() == 1  # blocked: date missing
            promise = date.today() + timedelta(days=3)
            await agent.fill("#disposition-date", promise.isoformat())
            await agent.click("#disposition-submit")
            await expect(agent.locator("#disposition-saved")).to_be_visible(timeout=TIMEOUT_MS)
            await shot(agent, "05-agent-promise-saved")

            # The same console in Indonesian, the agent's choice kept in a cookie.
            await agent.click("#switch-language")
            await expect(agent.locator("html")).to_have_attribute("lang", "id", timeout=TIMEOUT_MS)
            await expect(agent.locator("#agent-state .badge")).to_have_text(
                re.compile("Sedang bicara|Wrap-up")
            )
            await expect(agent.locator("#disposition h2")).to_have_text("Hasil panggilan")
            await shot(agent, "06-agent-console-indonesian")
        finally:
            result = await caller
        assert result.returncode == 0, result.output
        # The listen session ends with the call: the supervisor's phone gets its BYE.
        assert await sari_phone.finish(15) == 0

        row = await wait_row(run, "ptp", ACCOUNT)
        assert row["agent_id"] == "siti"
        assert row["code"] == "ptp"
        assert row["amount"] == 500000
        assert row["promise_date"] == promise
        assert row["account_id"] == ACCOUNT
        assert row["right_party"] is True
        assert row["note"] == "will pay on Friday"
        audit = await run.pool.fetch(
            "SELECT actor, action, outcome FROM audit_log WHERE actor = 'siti' ORDER BY at"
        )
        actions = [(r["action"], r["outcome"]) for r in audit]
        assert ("auth.login", "ok") in actions
        assert ("POST /console/agent/disposition", "ok") in actions
        trail = await run.pool.fetch(
            "SELECT principal, action, mode, agent_id FROM supervision_audit ORDER BY at"
        )
        assert [(r["principal"], r["action"], r["mode"]) for r in trail][:2] == [
            ("sari", "start", "listen"),
            ("sari", "answered", "listen"),
        ]


async def wait_row(run: RunningEngine, code: str, account: str) -> dict[str, object]:
    for _ in range(100):
        row = await run.pool.fetchrow(
            """SELECT * FROM dispositions WHERE code = $1 AND account_id = $2
               AND call_id <> 'earlier-call' ORDER BY at DESC LIMIT 1""",
            code,
            account,
        )
        if row is not None:
            return dict(row)
        await asyncio.sleep(0.1)
    raise AssertionError("no disposition row for the console call")


async def test_preview_call_shows_the_debtor_and_takes_a_campaign_promise(tmp_path: Path) -> None:
    """A preview campaign through the console: the next record with the debtor's amount, days
    past due, bucket and earlier promise; the agent dials it, the debtor (a SIPp "person" on
    the customers trunk) answers, the call card shows the debtor, and the campaign's promise
    form saves a row with the campaign and account. The supervisor pauses and resumes the
    campaign from the wallboard."""
    async with (
        CustomerTrunk(tmp_path / "trunk", calls=3) as trunk,
        running_engine(**dialer_sections(mode="preview", agents=["siti"])) as run,
        aiohttp.ClientSession() as http,
        AgentPhone("agent1001", "a1001", 5091, workdir=tmp_path) as phone,
        chromium() as browser,
    ):
        api = Api(run, http)
        auth = run.engine.auth
        assert auth is not None
        await auth.create_user("siti", AGENT_PASSWORD, Role.AGENT, "siti", "Siti", "en")
        await auth.create_user("sari", SUPERVISOR_PASSWORD, Role.SUPERVISOR, None, "Sari", "en")
        base = f"http://127.0.0.1:{run.engine.http_port}"
        await phone.register()
        # The agent's phone hangs up after 12 s of talk: time enough to read the card.
        await phone.serve(Answer(ring=0.0, hang_up_after=12), calls=1, timeout=90)
        await import_list(api, csv_for(["081200000220"]))
        await run.pool.execute(
            """INSERT INTO calls (call_id, direction, channel_name, did, caller_number,
                   engine_instance, started_at)
               VALUES ('earlier-call', 'inbound', 'PJSIP/x', '1500', '081200000220', 'old',
                   now() - interval '10 days')"""
        )
        await run.pool.execute(
            """INSERT INTO dispositions (call_id, agent_id, code, note, at, campaign,
                   account_id, amount, promise_date, right_party)
               VALUES ('earlier-call', 'made', 'ptp', '', now() - interval '10 days', $1,
                   'ACC0000', 250000, current_date - 3, true)""",
            DIALER_CAMPAIGN,
        )

        boss = await (await browser.new_context()).new_page()
        await log_in(boss, base, "sari", SUPERVISOR_PASSWORD)
        row = boss.locator(f'#campaigns tr[data-campaign="{DIALER_CAMPAIGN}"]')
        campaign_state = row.locator('td[data-field="state"]')
        await row.get_by_role("button", name="Start").click()
        await expect(campaign_state).to_have_text("Running", timeout=TIMEOUT_MS)
        await row.get_by_role("button", name="Pause").click()
        await expect(campaign_state).to_have_text("Paused", timeout=TIMEOUT_MS)
        await row.get_by_role("button", name="Resume").click()
        await expect(campaign_state).to_have_text("Running", timeout=TIMEOUT_MS)
        await shot(boss, "11-wallboard-campaign-running")

        agent = await (await browser.new_context()).new_page()
        await log_in(agent, base, "siti", AGENT_PASSWORD)
        await agent.click("#action-login")
        state = agent.locator("#agent-state")
        await expect(state).not_to_have_attribute("data-state", "logged_out", timeout=TIMEOUT_MS)
        if await state.get_attribute("data-state") != "ready":
            await agent.click("#action-ready")
        await expect(state).to_have_attribute("data-state", "ready", timeout=TIMEOUT_MS)
        await agent.click(f"#preview-next-{DIALER_CAMPAIGN}")
        await expect(agent.locator("#preview-account")).to_have_text("ACC0000", timeout=TIMEOUT_MS)
        await expect(agent.locator("#preview-amount")).to_have_text("Rp 1.500.000")
        await expect(agent.locator("#preview-dpd")).to_have_text("10")
        await expect(agent.locator("#preview-promises")).to_contain_text("Rp 250.000")
        await shot(agent, "12-agent-preview-record")
        assert trunk.invites == [], "nothing is dialled before the agent says so"

        await agent.click("#preview-dial")
        card = agent.locator("#call-card")
        await expect(card).to_have_attribute("class", "call-card phase-connected", timeout=30_000)
        await expect(agent.locator("#debtor-account")).to_have_text("ACC0000")
        await expect(agent.locator("#debtor-amount")).to_have_text("Rp 1.500.000")
        await expect(agent.locator("#debtor-dpd")).to_have_text("10")
        bucket = await agent.locator("#debtor-bucket").inner_text()
        await expect(agent.locator("#card-promises")).to_contain_text("Rp 250.000")
        await shot(agent, "13-agent-debtor-card")

        # The campaign's own outcomes; a callback in the past is refused by the engine.
        await agent.select_option("#disposition-code", "callback")
        await agent.fill("#disposition-callback", "2020-01-01T10:00")
        await agent.click("#disposition-submit")
        await expect(agent.locator("#disposition-error")).to_contain_text(
            "callback_at must be in the future", timeout=TIMEOUT_MS
        )
        await agent.select_option("#disposition-code", "ptp")
        await agent.fill("#disposition-amount", "750000")
        promise = date.today() + timedelta(days=7)
        await agent.fill("#disposition-date", promise.isoformat())
        await agent.click("#disposition-submit")
        await expect(agent.locator("#disposition-saved")).to_be_visible(timeout=TIMEOUT_MS)
        await shot(agent, "14-agent-campaign-promise-saved")

        # Leave only after the call is over: an engine stopped mid-call makes Asterisk repeat
        # its BYE to this phone's port for half a minute, into the next test's phone.
        for _ in range(300):
            ended = await run.pool.fetchval(
                "SELECT ended_at FROM dial_attempts WHERE campaign = $1", DIALER_CAMPAIGN
            )
            if ended is not None:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the preview call did not end")
        saved = await wait_row(run, "ptp", "ACC0000")
        assert saved["campaign"] == DIALER_CAMPAIGN
        assert saved["amount"] == 750000
        assert saved["promise_date"] == promise
        assert saved["agent_id"] == "siti"
        assert bucket  # the list's days past due put the debtor in a bucket
        audit = await run.pool.fetch(
            "SELECT action, target FROM audit_log WHERE actor = 'sari' AND outcome = 'ok'"
        )
        assert [r["action"] for r in audit].count("POST /console/wallboard/campaign") == 3
