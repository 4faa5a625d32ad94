"""The console's interface text in Indonesian and English (``messages.yaml``)."""

from __future__ import annotations

import re
import string
from functools import cache
from pathlib import Path
from typing import Any

import yaml

LANGUAGES = ("id", "en")
DEFAULT = "id"
MESSAGES = Path(__file__).with_name("messages.yaml")


class Catalogue:
    def __init__(self, entries: dict[str, dict[str, str]]) -> None:
        self.entries = entries

    @classmethod
    def load(cls, path: Path = MESSAGES) -> Catalogue:
        raw = yaml.safe_load(path.read_text("utf-8"))
        problems = check(raw)
        if problems:
            raise ValueError(f"{path.name}: " + "; ".join(problems))
        return cls(raw)

    def text(self, lang: str, key: str, **values: Any) -> str:
        entry = self.entries.get(key)
        if entry is None:
            # Visible on the page rather than an error page: a missing key is a bug to see.
            return f"[{key}]"
        template = entry.get(lang) or entry[DEFAULT]
        return template.format(**values) if values else template

    def has(self, key: str) -> bool:
        return key in self.entries


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def check(raw: object) -> list[str]:
    """Everything wrong with a catalogue: keys missing a language, placeholders that differ."""
    if not isinstance(raw, dict):
        return ["the file must map keys to {en: ..., id: ...}"]
    problems = []
    for key, entry in raw.items():
        if not isinstance(key, str) or not re.fullmatch(r"[a-z_]+(\.[a-z_]+)+", key):
            problems.append(f"{key!r} is not a dotted lower-case key")
            continue
        if not isinstance(entry, dict) or set(entry) != set(LANGUAGES):
            problems.append(f"{key} must have exactly {' and '.join(LANGUAGES)}")
            continue
        if not all(isinstance(v, str) and v.strip() for v in entry.values()):
            problems.append(f"{key} has an empty text")
            continue
        if placeholders(entry["en"]) != placeholders(entry["id"]):
            problems.append(f"{key}: placeholders differ between en and id")
    return problems


@cache
def catalogue() -> Catalogue:
    return Catalogue.load()


def pick_language(cookie: str | None, user_default: str | None, accept: str | None) -> str:
    """The page's language: the person's choice, else their profile, else the browser's."""
    for candidate in (cookie, user_default):
        if candidate in LANGUAGES:
            return candidate
    for part in (accept or "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LANGUAGES:
            return tag
    return DEFAULT
