"""Indonesian phone numbers: from what people type to E.164, what kind of number it is, and
what a number says about where its owner lives. Pure.

Which numbers exist, and of what kind (mobile, fixed line, toll-free 0800, premium 0809...),
comes from Google's libphonenumber metadata for region "ID" (the ``phonenumbers`` package),
which follows the national numbering plan of Indonesia as notified to the ITU (ITU-T E.164
assignment +62; plan communicated by the Ministry of Communication and Informatics) and is
corrected with every release. The time zone of a fixed line's area comes from the same
metadata's time-zone map. This module adds only what people type (``0812...``, ``62812...``,
``+62 812...``, separators, a mobile number with its 0 dropped), the reasons given when a
number is refused, and an area-code table for the few areas the metadata leaves ambiguous.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal, get_args

from phonenumbers import (
    PhoneNumber,
    PhoneNumberFormat,
    PhoneNumberType,
    ValidationResult,
    format_number,
    is_possible_number_with_reason,
    is_valid_number,
    number_type,
)
from phonenumbers.timezone import time_zones_for_number

from sambung.engine.errors import SambungError

WIB: Final = "Asia/Jakarta"
WITA: Final = "Asia/Makassar"
WIT: Final = "Asia/Jayapura"

COUNTRY_CODE: Final = 62
_SEPARATORS = re.compile(r"[\s\-().\/]")

PhoneType = Literal[
    "mobile",
    "fixed_line",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "unknown",
]
# Stable names: campaign settings (``phone_types``) and import reports use them.
PHONE_TYPES: Final[tuple[PhoneType, ...]] = get_args(PhoneType)
# What a debtor may be called on unless a campaign says otherwise: a person's own line.
DEFAULT_PHONE_TYPES: Final[tuple[PhoneType, ...]] = ("mobile", "fixed_line")

_KINDS: Final[dict[int, PhoneType]] = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "fixed_line",
    # libphonenumber says FIXED_LINE_OR_MOBILE when a number matches both patterns (as in
    # North America). Indonesia keeps mobiles under 08, apart from every area code, so the
    # ID metadata does not produce it today; should it ever, "fixed_line" keeps is_mobile a
    # statement of fact rather than a guess, and the area code still names a zone.
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.PERSONAL_NUMBER: "personal_number",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
    PhoneNumberType.UNKNOWN: "unknown",
}


class InvalidPhone(SambungError):
    error_id = "dialer.invalid_phone"
    title = "Not a usable phone number"
    http_status = 400

    def __init__(self, raw: str, reason: str, sentence: str) -> None:
        super().__init__(f"{raw!r}: {sentence}", raw=raw, reason=reason)
        self.reason = reason


@dataclass(frozen=True)
class PhoneInfo:
    e164: str
    kind: PhoneType
    zone: str | None  # the IANA zone of a fixed line's area; None when the number says nothing


def _national_digits(raw: str) -> str:
    """The national significant number (no 0, no 62) of what was typed, or why not."""
    text = raw.strip()
    if not text:
        raise InvalidPhone(raw, "empty", "the number is empty")
    compact = _SEPARATORS.sub("", text)
    if compact.startswith("+"):
        body = compact[1:]
        if not (body.isascii() and body.isdigit()):
            raise InvalidPhone(raw, "not_a_number", "only digits may follow the +")
        if not body.startswith("62"):
            raise InvalidPhone(raw, "not_indonesian", "the country code is not +62")
        nsn = body[2:]
    else:
        if not (compact.isascii() and compact.isdigit()):
            raise InvalidPhone(raw, "not_a_number", "it has characters other than digits")
        if compact.startswith("0"):
            nsn = compact[1:]
        elif compact.startswith("62"):
            nsn = compact[2:]
        elif compact.startswith("8"):
            # A mobile number with its 0 dropped, a common spreadsheet accident. Anything
            # else without 0, 62 or +62 is refused rather than guessed.
            nsn = compact
        else:
            raise InvalidPhone(raw, "bad_prefix", "it starts with neither 0, 62 nor +62")
    if nsn.startswith("0"):
        raise InvalidPhone(raw, "bad_prefix", "a second 0 after the prefix")
    if not nsn:
        raise InvalidPhone(raw, "too_short", "no digits after the prefix")
    return nsn


def classify(raw: str) -> PhoneInfo:
    """What was typed, as E.164 with its type and (for a fixed line) its area's zone.

    Raises InvalidPhone when it is not a number, not Indonesian, or not a valid Indonesian
    number by libphonenumber's metadata.
    """
    nsn = _national_digits(raw)
    number = PhoneNumber(country_code=COUNTRY_CODE, national_number=int(nsn))
    if not is_valid_number(number):
        why = is_possible_number_with_reason(number)
        # "Local only" is a subscriber number without its area code: too short to dial.
        if why in (ValidationResult.TOO_SHORT, ValidationResult.IS_POSSIBLE_LOCAL_ONLY):
            raise InvalidPhone(
                raw, "too_short", f"{len(nsn)} digits after the prefix, too few for Indonesia"
            )
        if why == ValidationResult.TOO_LONG:
            raise InvalidPhone(
                raw, "too_long", f"{len(nsn)} digits after the prefix, too many for Indonesia"
            )
        raise InvalidPhone(
            raw, "invalid", "not a valid Indonesian number by libphonenumber's numbering plan"
        )
    kind = _KINDS.get(number_type(number), "unknown")
    # Only a fixed line says where its owner is. libphonenumber answers Asia/Jakarta for
    # every mobile (the country's most populous zone): a guess, not a fact, since a mobile
    # goes wherever its owner does. Toll-free and other non-geographic numbers get all
    # three zones, which says nothing either.
    zone = _fixed_line_zone(number, nsn) if kind == "fixed_line" else None
    return PhoneInfo(format_number(number, PhoneNumberFormat.E164), kind, zone)


def normalise_phone(raw: str) -> str:
    """``0812-3456-7890``, ``+62 812 3456 7890``, ``62812...``, ``(021) 555-1234`` -> E.164.

    Any valid Indonesian number, whatever its type: a do-not-call entry for a toll-free
    number is harmless. Whether a campaign may dial a type is the list reader's question.
    """
    return classify(raw).e164


def is_mobile(e164: str) -> bool:
    """By the number's type, so a toll-free 0800 number is not a mobile."""
    try:
        return classify(e164).kind == "mobile"
    except InvalidPhone:
        return False


_IANA_ZONES: Final[dict[str, str]] = {
    WIB: WIB,
    "Asia/Pontianak": WIB,  # the IANA zone of West Kalimantan: same offset as WIB
    WITA: WITA,
    WIT: WIT,
}

# The fallback for areas where libphonenumber's time-zone map gives several zones (an area
# code that straddles a boundary) or none. Area codes (without the 0) whose region lies in
# WITA or WIT; every other fixed-line area is in WIB. Indonesia's zones follow provinces
# (Keppres 41/1987): WITA is Bali, NTB, NTT, South, East and North Kalimantan and Sulawesi;
# WIT is Maluku, North Maluku and Papua. Area code blocks by region: 36x-38x Bali and Nusa
# Tenggara, 4xx Sulawesi, 51x-52x South Kalimantan, 54x East and 55x North Kalimantan, 9xx
# Maluku and Papua. Central (53x, and 513 Kuala Kapuas) and West Kalimantan (56x) are WIB,
# as are Java (2x, 3x up to 35x) and Sumatra (6x, 7x). An area that straddles a boundary
# would need the exchange, which a list rarely gives: the province column, when present,
# wins over this.
_WITA_PREFIXES: Final = ("36", "37", "38", "4", "51", "52", "54", "55")
_WIT_PREFIXES: Final = ("9",)
_WIB_EXCEPTIONS: Final = ("513",)


def _area_zone(nsn: str) -> str:
    if nsn.startswith(_WIB_EXCEPTIONS):
        return WIB
    if nsn.startswith(_WIT_PREFIXES):
        return WIT
    if nsn.startswith(_WITA_PREFIXES):
        return WITA
    return WIB


def _fixed_line_zone(number: PhoneNumber, nsn: str) -> str:
    # "Etc/Unknown", or a zone outside Indonesia, maps to None and so to the table.
    zones = {_IANA_ZONES.get(z) for z in time_zones_for_number(number)}
    if len(zones) == 1:
        (zone,) = zones
        if zone is not None:
            return zone
    return _area_zone(nsn)


def zone_for_phone(e164: str) -> str | None:
    """The IANA zone of a fixed line's area; None for mobiles, non-geographic numbers and
    anything that is not a valid Indonesian number (they say nothing about where one lives).
    """
    try:
        return classify(e164).zone
    except InvalidPhone:
        return None


_PROVINCES: Final[dict[str, str]] = {
    # WIB: Sumatra, Java, West and Central Kalimantan
    "aceh": WIB,
    "sumatera utara": WIB,
    "sumatera barat": WIB,
    "riau": WIB,
    "kepulauan riau": WIB,
    "jambi": WIB,
    "sumatera selatan": WIB,
    "kepulauan bangka belitung": WIB,
    "bengkulu": WIB,
    "lampung": WIB,
    "dki jakarta": WIB,
    "banten": WIB,
    "jawa barat": WIB,
    "jawa tengah": WIB,
    "di yogyakarta": WIB,
    "jawa timur": WIB,
    "kalimantan barat": WIB,
    "kalimantan tengah": WIB,
    # WITA
    "bali": WITA,
    "nusa tenggara barat": WITA,
    "nusa tenggara timur": WITA,
    "kalimantan selatan": WITA,
    "kalimantan timur": WITA,
    "kalimantan utara": WITA,
    "sulawesi utara": WITA,
    "gorontalo": WITA,
    "sulawesi tengah": WITA,
    "sulawesi barat": WITA,
    "sulawesi selatan": WITA,
    "sulawesi tenggara": WITA,
    # WIT
    "maluku": WIT,
    "maluku utara": WIT,
    "papua": WIT,
    "papua barat": WIT,
    "papua barat daya": WIT,
    "papua tengah": WIT,
    "papua pegunungan": WIT,
    "papua selatan": WIT,
}
_ALIASES: Final[dict[str, str]] = {
    "jakarta": "dki jakarta",
    "dki": "dki jakarta",
    "yogyakarta": "di yogyakarta",
    "diy": "di yogyakarta",
    "jogja": "di yogyakarta",
    "jogjakarta": "di yogyakarta",
    "daerah istimewa yogyakarta": "di yogyakarta",
    "nad": "aceh",
    "nanggroe aceh darussalam": "aceh",
    "sumut": "sumatera utara",
    "sumbar": "sumatera barat",
    "sumsel": "sumatera selatan",
    "sumatra utara": "sumatera utara",
    "sumatra barat": "sumatera barat",
    "sumatra selatan": "sumatera selatan",
    "kepri": "kepulauan riau",
    "babel": "kepulauan bangka belitung",
    "bangka belitung": "kepulauan bangka belitung",
    "jabar": "jawa barat",
    "jateng": "jawa tengah",
    "jatim": "jawa timur",
    "kalbar": "kalimantan barat",
    "kalteng": "kalimantan tengah",
    "kalsel": "kalimantan selatan",
    "kaltim": "kalimantan timur",
    "kaltara": "kalimantan utara",
    "ntb": "nusa tenggara barat",
    "ntt": "nusa tenggara timur",
    "sulut": "sulawesi utara",
    "sulteng": "sulawesi tengah",
    "sulbar": "sulawesi barat",
    "sulsel": "sulawesi selatan",
    "sultra": "sulawesi tenggara",
    "malut": "maluku utara",
    "pabar": "papua barat",
    "pbd": "papua barat daya",
}
_ZONE_WORDS: Final[dict[str, str]] = {
    "wib": WIB,
    "wita": WITA,
    "wit": WIT,
    "asia/jakarta": WIB,
    "asia/pontianak": WIB,  # the IANA zone of West Kalimantan: same offset as WIB
    "asia/makassar": WITA,
    "asia/jayapura": WIT,
}


def _key(name: str) -> str:
    words = re.sub(r"[^a-z ]", " ", name.lower().replace("prov.", " ").replace("provinsi", " "))
    return " ".join(words.split())


def zone_for_province(name: str) -> str | None:
    """The zone of one of Indonesia's 38 provinces, by name or common abbreviation."""
    k = _key(name)
    k = _ALIASES.get(k, k)
    return _PROVINCES.get(k)


def zone_from_column(value: str) -> str | None:
    """A time-zone column: WIB, WITA, WIT or an Indonesian IANA zone name."""
    return _ZONE_WORDS.get(value.strip().lower())
