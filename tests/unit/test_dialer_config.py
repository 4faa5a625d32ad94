"""Campaign settings: bad values are refused naming the key; campaigns become ACD queues."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from sambung import acd, dialer
from sambung.dialer import campaign_queues as with_campaign_queues
from sambung.dialer.service import SAFE_HARBOUR_LEAD, campaign_queue, queue_of
from sambung.dialer.settings import campaign_config
from sambung.engine.config import QueueSettings, Settings, load_settings
from sambung.engine.errors import ConfigError

AGENTS = """
[[acd.agents]]
id = "siti"
name = "Siti"
endpoint = "agent1001"
pin = "1001"
skills = { collections = 4 }
[[acd.agents]]
id = "budi"
name = "Budi"
endpoint = "agent1002"
pin = "1002"
skills = { collections = 1 }
queues = []
"""


def load(tmp_path: Path, campaign: str) -> object:
    p = tmp_path / "s.toml"
    p.write_text(AGENTS + "\n[[dialer.campaigns]]\n" + campaign)
    return load_settings(p, env={})


@pytest.mark.parametrize(
    ("campaign", "key", "expected"),
    [
        ('name = "c"\nagents = ["siti"]\n', "dialer.campaigns[0].caller_id", "Field required"),
        (
            'name = "c"\ncaller_id = "021"\nagents = ["siti"]\nabandon_cap = 0.5\n',
            "abandon_cap",
            "less than or equal to 0.2",
        ),
        (
            'name = "c"\ncaller_id = "021"\nagents = ["siti"]\nabandon_window_hours = 800\n',
            "abandon_window_hours",
            "less than or equal to 720",
        ),
        (
            'name = "c"\ncaller_id = "021"\nagents = ["siti"]\nretry = { busi = "15m" }\n',
            "retry",
            "unknown outcomes ['busi']",
        ),
        (
            'name = "c"\ncaller_id = "021"\nagents = ["siti"]\nretry = { busy = "soon" }\n',
            "retry.busy",
            "should match pattern",
        ),
        (
            'name = "c"\ncaller_id = "021"\nagents = ["siti"]\nstart = "20:00"\nend = "08:00"\n',
            "dialer.campaigns[0]",
            "is not before end",
        ),
        ('name = "c"\ncaller_id = "021"\n', "dialer.campaigns[0]", "needs agents or a skill"),
        (
            'name = "c"\ncaller_id = "021"\nagents = ["nobody"]\n',
            "(top level)",
            "names 'nobody', not an agent",
        ),
        (
            'name = "c"\ncaller_id = "021"\nagents = ["siti"]\n'
            'dispositions = [{ code = "ptp", label = "PTP", promise = true, '
            'needs = ["amount"] }]\n',
            "dispositions[0]",
            "needs amount and date",
        ),
        (
            'name = "c"\ncaller_id = "021"\nagents = ["siti"]\n'
            'dispositions = [{ code = "cb", label = "CB", then = "callback" }]\n',
            "dispositions[0]",
            "needs callback_at",
        ),
        (
            'name = "c"\ncaller_id = "021"\nagents = ["siti"]\n'
            "max_attempts_per_day = 5\nmax_attempts_per_7_days = 4\n",
            "dialer.campaigns[0]",
            "more than max_attempts_per_7_days",
        ),
        (
            'name = "c"\ncaller_id = "021"\nagents = ["siti"]\n'
            'phone_types = ["mobile", "landline"]\n',
            "phone_types",
            "unknown types ['landline']; types: mobile, fixed_line, toll_free, premium_rate, "
            "shared_cost, voip, personal_number, pager, uan, voicemail, unknown",
        ),
        (
            'name = "c"\ncaller_id = "021"\nagents = ["siti"]\nphone_types = []\n',
            "phone_types",
            "could dial no number",
        ),
    ],
)
def test_a_bad_campaign_names_the_key(
    tmp_path: Path, campaign: str, key: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, campaign)
    assert key in err.value.key
    assert expected in err.value.expected


def test_retry_rules_keep_the_defaults_for_outcomes_not_named(tmp_path: Path) -> None:
    s = load(tmp_path, 'name = "c"\ncaller_id = "021"\nagents = ["siti"]\nretry = { busy = "2m" }')
    c = s.dialer.campaigns[0]  # type: ignore[attr-defined]
    assert c.retry["busy"] == "2m"
    assert c.retry["invalid_number"] == "never"
    assert c.retry["no_answer"] == "60m"


def test_a_campaign_dials_mobiles_and_fixed_lines_unless_it_says_otherwise(tmp_path: Path) -> None:
    s = load(tmp_path, 'name = "c"\ncaller_id = "021"\nagents = ["siti"]\n')
    assert s.dialer.campaigns[0].phone_types == ["mobile", "fixed_line"]  # type: ignore[attr-defined]


def test_a_campaign_becomes_a_queue_its_agents_serve(tmp_path: Path) -> None:
    s = load(
        tmp_path,
        'name = "c"\ncaller_id = "021"\nskill = "collections"\nmin_level = 3\n'
        'blend = "inbound_first"\nconnect_limit_seconds = 2\nwrap_up_seconds = 7\n',
    )
    assert isinstance(s, Settings)
    config = with_campaign_queues(acd.config(s.acd, s.calls), dialer.config(s.dialer))
    q = next(q for q in config.queues if q.name == queue_of("c"))
    assert q.priority == -1  # inbound queues (0 and up) are served first
    assert q.max_wait_seconds == pytest.approx(2 - SAFE_HARBOUR_LEAD)
    assert q.overflow.action == "hangup"
    assert q.overflow.prompts == ("sound:sambung/dialer-safe-harbour",)
    assert q.announce_every_seconds == 0
    assert q.wrap_up_seconds == 7
    assert q.auto_answer
    members = {a.id: a.queues for a in config.agents}
    assert queue_of("c") in members["siti"]  # skilled enough
    assert queue_of("c") not in members["budi"]


def test_outbound_first_outranks_every_inbound_queue() -> None:
    from sambung.engine.config import CampaignSettings

    c = CampaignSettings(name="c", caller_id="021", agents=["siti"], blend="outbound_first")
    assert campaign_queue(campaign_config(c)).priority == 9


@pytest.mark.parametrize(
    ("disposition", "says"),
    [
        (
            {"code": "cb", "label": "Call back", "needs": ["callback_at"], "then": "callback"},
            "recorded only",
        ),
        ({"code": "paid", "label": "Paid", "paid": True}, "would do nothing"),
    ],
)
def test_a_queue_disposition_that_would_act_on_a_record_is_refused(
    disposition: dict[str, object], says: str
) -> None:
    with pytest.raises(ValidationError, match=says):
        QueueSettings(name="q", dispositions=[disposition])
