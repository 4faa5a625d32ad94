"""Building a lookup's URL from its template and the call's attributes (caller data).

A value is one path segment, percent-encoded; a segment made from caller data that is, or
decodes to, ``.``, ``..`` or nothing is refused, so a caller can never walk the CRM's paths.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from sambung.ivr.errors import LookupUrlRefused
from sambung.ivr.urls import render_url

TEMPLATE = "http://crm.local/accounts/by-phone/{n}/detail"
BASE = "http://crm.local/accounts/by-phone/"


@pytest.mark.parametrize(
    ("value", "segment"),
    [
        pytest.param("628111000234", "628111000234", id="digits"),
        pytest.param("+62 811", "%2B62%20811", id="plus and space"),
        pytest.param("12/34", "12%2F34", id="a slash stays inside the segment"),
        pytest.param("a\\b", "a%5Cb", id="backslash"),
        pytest.param("a?b#c", "a%3Fb%23c", id="query and fragment marks"),
        pytest.param("Ñandú", "%C3%91and%C3%BA", id="unicode as UTF-8"),
        pytest.param("٣٤", "%D9%A3%D9%A4", id="non-ASCII digits"),
        pytest.param("...", "...", id="three dots is a name, not a dot segment"),
        pytest.param("a..b", "a..b", id="dots inside a name"),
        pytest.param(".hidden", ".hidden", id="a leading dot"),
        pytest.param("~x_y-z", "~x_y-z", id="unreserved characters stay"),
    ],
)
def test_given_a_value_then_it_is_one_encoded_segment(value: str, segment: str) -> None:
    assert render_url(TEMPLATE, {"n": value}) == f"{BASE}{segment}/detail"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param("..", "dot_segment", id="dot dot"),
        pytest.param(".", "dot_segment", id="dot"),
        pytest.param("", "empty_segment", id="empty"),
        pytest.param("%2e%2e", "dot_segment", id="percent-encoded dot dot"),
        pytest.param("%2E", "dot_segment", id="percent-encoded dot"),
        pytest.param("%252e%252e", "dot_segment", id="doubly encoded dot dot"),
        pytest.param("../detail", "dot_segment", id="dot dot then a slash"),
        pytest.param("x/../../admin", "dot_segment", id="dot dot between slashes"),
        pytest.param("..\\admin", "dot_segment", id="dot dot then a backslash"),
        pytest.param("%2e%2e%2fadmin", "dot_segment", id="all of it encoded"),
    ],
)
def test_given_caller_data_that_would_walk_the_path_then_refused(value: str, reason: str) -> None:
    with pytest.raises(LookupUrlRefused) as err:
        render_url(TEMPLATE, {"n": value})
    assert (err.value.reason, err.value.attr) == (reason, "n")
    assert err.value.error_id == "ivr.lookup_url_refused"
    assert err.value.choice == f"{reason}:n"
    # The value itself is caller data: never in the error (which is logged).
    if value:
        assert value not in str(err.value)


def test_given_a_missing_attribute_then_refused_as_missing() -> None:
    with pytest.raises(LookupUrlRefused) as err:
        render_url(TEMPLATE, {})
    assert err.value.choice == "missing:n"


@pytest.mark.parametrize(
    ("template", "attrs", "reason"),
    [
        pytest.param("http://crm/a/.{n}", {"n": "."}, "dot_segment", id="dot in template + dot"),
        pytest.param("http://crm/a/%2E{n}", {"n": "."}, "dot_segment", id="encoded dot + dot"),
        pytest.param("http://crm/a/{n}{m}", {"n": "", "m": ""}, "empty_segment", id="two empty"),
        pytest.param("http://crm/a/{n}{m}", {"n": ".", "m": "."}, "dot_segment", id="two dots"),
        pytest.param("http://crm/{n}", {"n": ""}, "empty_segment", id="last segment empty"),
    ],
)
def test_given_values_that_join_into_a_dot_segment_then_refused(
    template: str, attrs: dict[str, str], reason: str
) -> None:
    with pytest.raises(LookupUrlRefused) as err:
        render_url(template, attrs)
    assert err.value.reason == reason


@pytest.mark.parametrize(
    ("template", "attrs", "url"),
    [
        pytest.param(
            "http://crm/x?caller={n}", {"n": ""}, "http://crm/x?caller=", id="empty in the query"
        ),
        pytest.param(
            "http://crm/x?caller={n}", {"n": ".."}, "http://crm/x?caller=..", id="dots in query"
        ),
        pytest.param(
            "http://crm/x?c={n}&d={m}",
            {"n": "a&b=c", "m": "1"},
            "http://crm/x?c=a%26b%3Dc&d=1",
            id="query separators encoded",
        ),
        pytest.param("http://crm/x/{n}#frag", {"n": "7"}, "http://crm/x/7#frag", id="fragment"),
        pytest.param("http://crm/a/b{n}", {"n": ""}, "http://crm/a/b", id="empty after text"),
        pytest.param("http://crm/a/x{n}", {"n": ".."}, "http://crm/a/x..", id="x.. is a name"),
        pytest.param("http://crm/a//b", {}, "http://crm/a//b", id="template's own path kept"),
    ],
)
def test_given_values_outside_a_whole_segment_then_built(
    template: str, attrs: dict[str, str], url: str
) -> None:
    assert render_url(template, attrs) == url


def test_given_a_template_that_does_not_parse_then_refused() -> None:
    with pytest.raises(LookupUrlRefused) as err:
        render_url("http://crm/{n", {"n": "1"})
    assert err.value.choice == "template:"


@given(st.text(max_size=40))
def test_whatever_the_caller_sends_the_url_keeps_its_shape(value: str) -> None:
    """Refused, or one segment that survives a client's normalisation and decodes back."""
    try:
        url = render_url(TEMPLATE, {"n": value})
    except LookupUrlRefused as err:
        refused = err.reason
    else:
        refused = ""
    if refused:
        assert refused in ("dot_segment", "empty_segment")
        return
    # yarl (what aiohttp sends with) normalises dot segments when it parses a URL: the
    # segment count after that is the template's.
    parts = URL(url).raw_parts
    assert parts[:4] == ("/", "accounts", "by-phone", parts[3])
    assert parts[4:] == ("detail",)
    assert URL(url).parts[3] == value
