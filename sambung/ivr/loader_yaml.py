"""YAML for flow and holiday files: every mapping and list remembers the line of each item.

It differs from PyYAML's safe loading in three ways, all to catch mistakes: a key given twice
in one mapping is reported (plain YAML keeps the last one silently), dates stay text (the
loader reads them itself, with a line), and a mapping key must be a plain value. Merge keys
(``<<: *defaults``) work as in YAML. Nothing here reports problems: ``parse`` returns the
duplicates and raises ``yaml.YAMLError``; ``ivr.loader_reader`` turns both into problems.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

__all__ = ["Duplicate", "YamlMap", "YamlSeq", "parse", "paths"]

_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class YamlMap(dict[Any, Any]):
    """A YAML mapping that remembers the line of each key (1-based) and its own."""

    __slots__ = ("line", "lines")

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.lines: dict[Any, int] = {}


class YamlSeq(list[Any]):
    """A YAML list that remembers the line of each item (1-based) and its own."""

    __slots__ = ("line", "lines")

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.lines: list[int] = []


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A key written twice in ``mapping``: the line of the repeat and of the first."""

    mapping: YamlMap
    key: Any
    line: int
    first: int


class _Loader(yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[Duplicate] = []


# Dates stay text: PyYAML would turn 2026-13-01 into a ValueError with no line, and 2026-01-01
# into a date here but a string in a quoted holiday list.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _TIMESTAMP_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> YamlMap:
    written = {id(k) for k, _ in node.value}
    # Merge keys (<<: *defaults) put the merged pairs first; a key written here overrides one
    # merged (that is what merging is for), and of two merged the first wins, as in YAML.
    loader.flatten_mapping(node)
    out = YamlMap(_line(node))
    merged: set[Any] = set()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, list | dict):
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark
            )
        here = id(key_node) in written
        if key in out and (not here or key not in merged):
            if here:
                loader.duplicates.append(Duplicate(out, key, _line(key_node), out.lines[key]))
            continue
        out[key] = loader.construct_object(value_node, deep=True)
        out.lines[key] = _line(key_node)
        if here:
            merged.discard(key)
        else:
            merged.add(key)
    return out


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> YamlSeq:
    out = YamlSeq(_line(node))
    for child in node.value:
        out.append(loader.construct_object(child, deep=True))
        out.lines.append(_line(child))
    return out


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def parse(text: str) -> tuple[Any, list[Duplicate]]:
    """The document in ``text`` (None when empty) and the keys written twice in it.

    Raises ``yaml.YAMLError`` (``yaml.MarkedYAMLError`` with the place, when known).
    """
    loader = _Loader(text)
    try:
        return loader.get_single_data(), loader.duplicates
    finally:
        loader.dispose()


def paths(
    data: Any, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[int, tuple[str | int, ...]]]:
    """(id of each mapping, its path) through a parsed document."""
    if isinstance(data, YamlMap):
        yield id(data), path
        for k, v in data.items():
            yield from paths(v, (*path, str(k)))
    elif isinstance(data, YamlSeq):
        for i, v in enumerate(data):
            yield from paths(v, (*path, i))
