"""Where Asterisk keeps each language's prompts, as seen from the engine's machine."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def language_dirs(sounds_root: Path, languages: Iterable[str]) -> dict[str, list[Path]]:
    """Folders that hold ``sound:`` prompts for each language, best first.

    Debian's package makes ``sounds/en`` an absolute symlink through ``/etc/alternatives``
    (to ``en_US_f_Allison``); seen from outside Asterisk's root file system it dangles, so a
    voice folder named ``<lang>_*`` is used when the plain one does not resolve.
    """
    out: dict[str, list[Path]] = {}
    for lang in languages:
        dirs: list[Path] = []
        plain = sounds_root / lang
        if plain.is_dir():
            dirs.append(plain)
        elif plain.is_symlink():
            target = Path(os.readlink(plain))
            inside = sounds_root / target.name
            if inside.is_dir():
                dirs.append(inside)
        voices = sorted(p for p in sounds_root.glob(f"{lang}_*") if p.is_dir())
        dirs.extend(p for p in voices if p not in dirs)
        out[lang] = dirs
    return out
