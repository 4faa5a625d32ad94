"""The checks made once every node of a flow is read: references to unknown nodes, the graph
(unreachable nodes, loops with no exit, menus nested too deep) and the prompts against the
sound folders (English as the fallback, warnings for other languages).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from sambung.ivr.loader_graph import (
    MAX_MENU_PATHS,
    loops_without_exit,
    menus_too_deep,
    reachable,
    shortest_cycle,
)
from sambung.ivr.loader_reader import At, Reader, did_you_mean
from sambung.ivr.loader_values import SOUND_EXTENSIONS
from sambung.ivr.speech import (
    INDONESIAN_NUMBER_WORDS,
    NUMBER_PROMPT_DIR,
    RUPIAH_PROMPT,
    indonesian_number_words,
)

__all__ = ["EXIT_KINDS", "check_graph", "check_prompts", "check_refs"]

# The node types that end the IVR: a way out of any loop.
EXIT_KINDS = frozenset({"hangup", "transfer"})
ENGLISH = "en"


def check_refs(r: Reader) -> None:
    """Every node a key names (``next``, ``goto``, options...) exists."""
    ids = list(r.kinds)
    known = set(ids) | r.broken
    for at, target in r.refs:
        if target not in known:
            r.err(at, f"unknown target node {target!r}{did_you_mean(target, ids)}")


def check_graph(r: Reader, start: str) -> None:
    """Unreachable nodes, loops with no exit, menus nested deeper than ``max_menu_depth``."""
    ids = list(r.kinds)
    known = set(ids)
    if start not in known:
        return  # reported as an unknown target; everything would look unreachable
    edges = {n: [t for t in ts if t in known] for n, ts in r.edges.items()}
    seen = reachable([start], edges)
    # A node that could not be read may have lost edges: what looks unreachable past it
    # may not be, so say nothing rather than something wrong.
    for nid in [] if seen & r.broken else ids:
        if nid not in seen:
            r.err(
                At(nid, "", r.node_lines.get(nid)),
                f"unreachable: no path from start {start!r} leads here",
            )
    # Nodes not read (unknown kind...) and edges to unknown nodes might lead anywhere: they
    # count as exits so that one mistake is reported once, not again as a loop.
    exits = {n for n, k in r.kinds.items() if k in EXIT_KINDS} | r.broken
    exits |= {n for n, ts in r.edges.items() if any(t not in known for t in ts)}
    order = [n for n in ids if n in seen]
    for loop in loops_without_exit(order, edges, exits):
        first = loop[0]
        around = shortest_cycle(first, edges, set(loop))
        names = ", ".join(loop)
        r.err(
            At(first, "", r.node_lines.get(first)),
            f"loop with no exit: {' -> '.join(around)}; no hangup or transfer node can be "
            f"reached from {names}",
        )
    menus = {n for n, k in r.kinds.items() if k == "menu"}
    deep = menus_too_deep(start, edges, menus, r.max_menu_depth)
    if deep is None:
        r.warn(
            At("", "start", None),
            f"menu depth not checked: more than {MAX_MENU_PATHS} paths through the menus",
        )
        deep = {}
    for menu, path in deep.items():
        r.err(
            At(menu, "", r.node_lines.get(menu)),
            f"menus nested {len(path)} deep ({' -> '.join(path)}); "
            f"max_menu_depth is {r.max_menu_depth}",
        )


def check_prompts(r: Reader, sound_dirs: Mapping[str, Sequence[Path]]) -> None:
    """Every ``sound:`` prompt in English (an error when missing: English is Asterisk's
    fallback) and in the flow's other languages (a warning: it plays in English); the say
    node's own prompts (rupiah, the Indonesian number words, which have no fallback)."""
    found_cache: dict[tuple[str, str], bool] = {}

    def found(name: str, language: str) -> bool:
        if (name, language) not in found_cache:
            found_cache[(name, language)] = any(
                (d / f"{name}.{ext}").is_file()
                for d in sound_dirs.get(language, ())
                for ext in SOUND_EXTENSIONS
            )
        return found_cache[(name, language)]

    def folders(language: str) -> str:
        dirs = sound_dirs.get(language, ())
        return ", ".join(str(d) for d in dirs) if dirs else f"no sounds folder for {language}"

    languages = [ENGLISH, *(lang for lang in r.languages if lang != ENGLISH)]
    uses: dict[str, list[At]] = {}
    for name, at in r.prompt_uses:
        uses.setdefault(name, []).append(at)
    for node, at in r.say_nodes:
        if node.kind == "money":
            uses.setdefault(RUPIAH_PROMPT, []).append(at)
    for name, ats in uses.items():
        more = (
            f" (and {len(ats) - 1} more use{'s' if len(ats) > 2 else ''})" if len(ats) > 1 else ""
        )
        if not found(name, ENGLISH):
            r.err(
                ats[0],
                f"prompt {name} not found in English, the fallback: no {name}.wav "
                f"(or {', '.join(SOUND_EXTENSIONS[1:])}) in {folders(ENGLISH)}{more}",
            )
            continue
        for lang in languages[1:]:
            if not found(name, lang):
                r.warn(
                    ats[0],
                    f"prompt {name} is missing in {lang} ({folders(lang)}): plays in English{more}",
                )
    # Indonesian amounts are composed from our own word files; no English file stands in.
    speaks_indonesian = [lang for lang in r.languages if re.split(r"[_-]", lang)[0] == "id"]
    if r.say_nodes and speaks_indonesian:
        _, at = r.say_nodes[0]
        # Digits are said with the ten digit words; numbers and amounts need them all.
        words = INDONESIAN_NUMBER_WORDS
        if all(n.kind == "digits" for n, _ in r.say_nodes):
            words = tuple(indonesian_number_words(d)[0] for d in range(10))
        for lang in speaks_indonesian:
            missing = [w for w in words if not found(f"{NUMBER_PROMPT_DIR}/{w}", lang)]
            if missing:
                r.err(
                    at,
                    f"say needs the Indonesian number words in {lang} ({folders(lang)}), "
                    f"which have no English fallback; missing {NUMBER_PROMPT_DIR}/"
                    + f", {NUMBER_PROMPT_DIR}/".join(missing[:5])
                    + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""),
                )
