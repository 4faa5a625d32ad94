"""The campaign's rolling window and last hour, counted as events come and go, agree with
counting them afresh (the pacer reads them twice a round)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sambung.dialer import compliance
from sambung.dialer.service import HOUR, CampaignRun
from sambung.dialer.settings import campaign_config
from sambung.engine.config import CampaignSettings

KINDS = st.sampled_from(["ended", "live", "abandoned"])


def run_of(window_hours: float) -> CampaignRun:
    c = campaign_config(
        CampaignSettings(
            name="c", caller_id="021", agents=["siti"], abandon_window_hours=window_hours
        )
    )
    return CampaignRun(
        settings=c,
        window=None,  # type: ignore[arg-type]  # not read here
        caps=compliance.AttemptCaps(3, 10),
        rules=None,  # type: ignore[arg-type]
    )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 3 * HOUR), KINDS), max_size=200),
    st.lists(st.floats(0, 6 * HOUR), min_size=1, max_size=5),
    st.floats(0, 60),
)
def test_property_counts_as_they_go_agree_with_counting_afresh(
    events: list[tuple[float, str]], reads: list[float], guard: float
) -> None:
    run = run_of(1.5)
    events.sort()
    for at, kind in events:
        run.add_event(at, kind)
    last = events[-1][0] if events else 0.0
    for now in sorted(r + last for r in reads):
        cutoff = now - 1.5 * HOUR
        kept = [(t, k) for t, k in events if t >= cutoff]
        want = tuple(sum(1 for _, k in kept if k == kind) for kind in ("ended", "live"))
        want += (sum(1 for _, k in kept if k == "abandoned"),)
        assert run.counts(now) == want
        lives = [t for t, k in events if k == "live" and now - HOUR + guard < t <= now]
        abandons = sum(1 for t, k in events if k == "abandoned" and now - HOUR < t <= now)
        since = now - min(lives) if lives else None
        assert run.hour_counts(now, guard) == (len(lives), abandons, since)
