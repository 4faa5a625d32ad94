"""ARI status x path -> domain exception."""

from __future__ import annotations

import pytest

from sambung.asterisk.ari.errors import (
    AriAuthFailed,
    AriBadRequest,
    AriConflict,
    AriHttpError,
    AriNotFound,
    AriServerError,
    AriUnavailable,
    AriUnprocessable,
    ChannelGone,
    ChannelNotAnswered,
    error_for,
    message_of,
)
from sambung.engine.errors import CallGone, SambungError, TelephonyError, TelephonyUnavailable


@pytest.mark.parametrize(
    ("status", "method", "path", "expected"),
    [
        (400, "POST", "/bridges/b1/addChannel", AriBadRequest),
        (401, "GET", "/asterisk/info", AriAuthFailed),
        (404, "POST", "/channels/1700.1/answer", ChannelGone),
        (404, "DELETE", "/channels/1700.1", ChannelGone),
        (404, "POST", "/channels/1700.1/play/p1", ChannelGone),
        (404, "GET", "/channels/PJSIP%2Ftrunk-00000001", ChannelGone),
        (404, "DELETE", "/playbacks/p1", AriNotFound),
        (404, "DELETE", "/bridges/b1", AriNotFound),
        (404, "GET", "/applications/sambung", AriNotFound),
        (404, "GET", "/channels", AriNotFound),
        (404, "POST", "/channels/create", AriNotFound),
        (404, "POST", "/channels/externalMedia", AriNotFound),
        (409, "POST", "/channels/1700.1/answer", AriConflict),
        (409, "POST", "/bridges/b1", AriConflict),
        (412, "POST", "/channels/1700.1/play/p1", ChannelNotAnswered),
        (422, "POST", "/bridges/b1/addChannel", AriUnprocessable),
        (500, "POST", "/channels/agt-1", AriServerError),
        (501, "GET", "/asterisk/modules", AriHttpError),
        (503, "GET", "/asterisk/info", AriHttpError),
    ],
)
def test_given_ari_error_status_when_translated_then_domain_class_matches(
    status: int, method: str, path: str, expected: type[AriHttpError]
) -> None:
    err = error_for(status, method, path, "boom")
    assert type(err) is expected
    assert isinstance(err, TelephonyError)
    assert (err.status, err.method, err.path, err.message) == (status, method, path, "boom")
    assert err.error_id.startswith("ari.")


def test_given_channel_gone_then_it_is_an_engine_call_gone_and_names_the_channel() -> None:
    err = error_for(404, "POST", "/channels/1700.42/answer", "Channel not found")
    assert isinstance(err, ChannelGone)
    assert isinstance(err, CallGone)
    assert isinstance(err, AriNotFound)
    assert err.channel_id == "1700.42"
    assert err.error_id == "ari.channel_gone"
    assert err.http_status == 404


def test_given_error_ids_then_they_are_stable_and_unique() -> None:
    classes: list[type[SambungError]] = [
        AriHttpError,
        AriBadRequest,
        AriAuthFailed,
        AriNotFound,
        ChannelGone,
        AriConflict,
        ChannelNotAnswered,
        AriUnprocessable,
        AriServerError,
        AriUnavailable,
    ]
    ids = [c.error_id for c in classes]
    assert len(set(ids)) == len(ids)
    assert ChannelNotAnswered.error_id == "ari.channel_not_answered"
    assert AriUnavailable.error_id == "ari.unavailable"


def test_given_unavailable_then_it_is_telephony_unavailable_with_context() -> None:
    err = AriUnavailable("GET", "/asterisk/info", "ClientConnectorError: refused")
    assert isinstance(err, TelephonyUnavailable)
    assert err.context == {
        "method": "GET",
        "path": "/asterisk/info",
        "reason": "ClientConnectorError: refused",
    }


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"message": "Channel not found"}, "Channel not found"),
        ({"error": "Allocation failed"}, "Allocation failed"),
        ({"details": "x"}, "{'details': 'x'}"),
        (None, ""),
        ("plain text", "plain text"),
    ],
)
def test_given_error_body_when_reading_message_then_asterisk_message_is_kept(
    body: object, expected: str
) -> None:
    assert message_of(body) == expected
