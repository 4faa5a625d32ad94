"""Indonesian phone numbers: from what people type to E.164, and what a number says about
where its owner lives. Pure.

Indonesia is country code +62 (ITU-T E.164 assignment). Inside the country a number is
dialled with the trunk prefix 0: mobile numbers are 08xx plus 6-9 digits, fixed lines are
0 + an area code of 2-3 digits (21 Jakarta, 22 Bandung, 361 Denpasar...) + a subscriber
number of 5-8 digits. So a national significant number (without 0 or 62) is 8 to 12 digits,
and a mobile one starts with 8 (ITU-T, "National numbering plan of Indonesia", communicated
by the Ministry of Communication and Informatics).
"""

from __future__ import annotations

import re
from typing import Final

from engine.errors import SambungError

WIB: Final = "Asia/Jakarta"
WITA: Final = "Asia/Makassar"
WIT: Final = "Asia/Jayapura"

_SEPARATORS = re.compile(r"[\s\-().\/]")
MIN_NSN = 8
MAX_NSN = 12


class InvalidPhone(SambungError):
    error_id = "dialer.invalid_phone"
    title = "Not a usable phone number"
    http_status = 400

    def __init__(self, raw: str, reason: str, sentence: str) -> None:
        super().__init__(f"{raw!r}: {sentence}", raw=raw, reason=reason)
        self.reason = reason


def normalise_phone(raw: str) -> str:
    """``0812-3456-7890``, ``+62 812 3456 7890``, ``62812...``, ``(021) 555-1234`` -> E.164.

    A number without a prefix (``81234567890``) is taken as national when it starts with 8
    (a mobile number with its 0 dropped, a common spreadsheet accident); anything else
    without 0, 62 or +62 is refused rather than guessed.
    """
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
            nsn = compact
        else:
            raise InvalidPhone(raw, "bad_prefix", "it starts with neither 0, 62 nor +62")
    if nsn.startswith("0"):
        raise InvalidPhone(raw, "bad_prefix", "a second 0 after the prefix")
    if len(nsn) < MIN_NSN:
        raise InvalidPhone(raw, "too_short", f"{len(nsn)} digits after the prefix, at least 8")
    if len(nsn) > MAX_NSN:
        raise InvalidPhone(raw, "too_long", f"{len(nsn)} digits after the prefix, at most 12")
    if nsn.startswith("8") and len(nsn) < 9:
        raise InvalidPhone(raw, "too_short", "a mobile number has at least 9 digits after 0")
    return "+62" + nsn


def is_mobile(e164: str) -> bool:
    return e164.startswith("+628")


# Area codes (without the 0) whose region lies in WITA or WIT; every other fixed-line area
# is in WIB. Indonesia's zones follow provinces (Keppres 41/1987): WITA is Bali, NTB, NTT,
# South, East and North Kalimantan and Sulawesi; WIT is Maluku, North Maluku and Papua. Area
# code blocks by region: 36x-38x Bali and Nusa Tenggara, 4xx Sulawesi, 51x-52x South
# Kalimantan, 54x East and 55x North Kalimantan, 9xx Maluku and Papua. Central (53x, and 513
# Kuala Kapuas) and West Kalimantan (56x) are WIB, as are Java (2x, 3x up to 35x) and Sumatra
# (6x, 7x). An area that straddles a boundary would need the exchange, which a list rarely
# gives: the province column, when present, wins over this.
_WITA_PREFIXES: Final = ("36", "37", "38", "4", "51", "52", "54", "55")
_WIT_PREFIXES: Final = ("9",)
_WIB_EXCEPTIONS: Final = ("513",)


def zone_for_phone(e164: str) -> str | None:
    """The IANA zone of a fixed line's area; None for mobile numbers (they say nothing)."""
    if not e164.startswith("+62") or is_mobile(e164):
        return None
    nsn = e164[3:]
    if nsn.startswith(_WIB_EXCEPTIONS):
        return WIB
    if nsn.startswith(_WIT_PREFIXES):
        return WIT
    if nsn.startswith(_WITA_PREFIXES):
        return WITA
    return WIB


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
