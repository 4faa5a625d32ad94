"""The loader's graph checks: unreachable nodes, loops with no exit, menus nested too deep.

Small hand-made graphs for each rule, then Hypothesis: random graphs of play, menu and hangup
nodes, where the loop check (pure, and through a written flow file) must agree with a
brute-force reachability computation, and the depth check with a brute-force search.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from tempfile import TemporaryDirectory

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sambung.ivr.errors import FlowError, FlowProblem
from sambung.ivr.loader import load_flow, load_flows
from sambung.ivr.loader_graph import loops_without_exit, menus_too_deep, reachable

LOOP = "loop with no exit: "


def play(nxt: str) -> dict[str, object]:
    return {"type": "play", "prompts": ["p"], "next": nxt}


def menu(*targets: str, on_failure: str | None = None, zero_out: bool = True) -> dict[str, object]:
    node: dict[str, object] = {
        "type": "menu",
        "prompts": ["p"],
        "options": {str(i + 1): t for i, t in enumerate(targets)},
        "zero_out": zero_out,
    }
    if on_failure is not None:
        node["retry"] = {"on_failure": on_failure}
    return node


HANGUP = {"type": "hangup"}
TRANSFER = {"type": "transfer", "queue": "q"}


def check(
    tmp: Path,
    nodes: Mapping[str, object],
    start: str | None = None,
    max_menu_depth: int = 4,
    zero_out: str | None = None,
) -> list[FlowProblem]:
    """The problems of a flow made of ``nodes`` (none: it loaded)."""
    data: dict[str, object] = {"flow": "g", "dids": ["1500"], "start": start or next(iter(nodes))}
    if zero_out is not None:
        data["zero_out"] = {"key": "0", "goto": zero_out}
    data["nodes"] = dict(nodes)
    path = tmp / "g.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        load_flow(path, known_queues={"q"}, sound_dirs=None, max_menu_depth=max_menu_depth)
    except FlowError as err:
        return list(err.problems)
    return []


def summary(problems: Sequence[FlowProblem]) -> list[tuple[str, str]]:
    return [(p.node, p.expected) for p in problems]


# ---- unreachable ----------------------------------------------------------------------------


def test_given_a_node_no_path_leads_to_then_it_is_unreachable(tmp_path: Path) -> None:
    problems = check(tmp_path, {"a": play("end"), "end": HANGUP, "orphan": play("end")})
    assert summary(problems) == [("orphan", "unreachable: no path from start 'a' leads here")]
    assert problems[0].key == ""
    assert problems[0].line == 13


def test_given_the_zero_out_target_only_reached_by_the_zero_out_key_then_it_is_reachable(
    tmp_path: Path,
) -> None:
    nodes = {"m": menu("end"), "end": HANGUP, "agent": TRANSFER}
    assert check(tmp_path, nodes, zero_out="agent") == []


def test_given_no_menu_takes_the_zero_out_key_then_its_target_is_unreachable(
    tmp_path: Path,
) -> None:
    nodes = {"m": menu("end", zero_out=False), "end": HANGUP, "agent": TRANSFER}
    assert summary(check(tmp_path, nodes, zero_out="agent")) == [
        ("agent", "unreachable: no path from start 'm' leads here")
    ]


def test_given_retry_on_failure_then_its_target_is_reachable(tmp_path: Path) -> None:
    nodes = {"m": menu("end", on_failure="sorry"), "end": HANGUP, "sorry": HANGUP}
    assert check(tmp_path, nodes) == []


# ---- loops with no exit -----------------------------------------------------------------------


def test_given_two_plays_pointing_at_each_other_then_a_loop_with_no_exit(tmp_path: Path) -> None:
    problems = check(tmp_path, {"a": play("b"), "b": play("a")})
    assert summary(problems) == [
        ("a", LOOP + "a -> b -> a; no hangup or transfer node can be reached from a, b")
    ]


def test_given_a_play_pointing_at_itself_then_a_loop(tmp_path: Path) -> None:
    problems = check(tmp_path, {"a": play("a")})
    assert summary(problems) == [
        ("a", LOOP + "a -> a; no hangup or transfer node can be reached from a")
    ]


def test_given_a_chain_into_a_loop_then_only_the_loop_is_reported(tmp_path: Path) -> None:
    nodes = {"s": play("x"), "x": play("y"), "y": play("z"), "z": play("y")}
    assert summary(check(tmp_path, nodes)) == [
        ("y", LOOP + "y -> z -> y; no hangup or transfer node can be reached from y, z")
    ]


def test_given_a_menu_waiting_for_input_with_one_way_out_then_fine(tmp_path: Path) -> None:
    nodes = {"m": menu("info", "m", "end"), "info": play("m"), "end": HANGUP}
    assert check(tmp_path, nodes) == []


def test_given_menus_whose_only_way_out_is_running_out_of_attempts_then_a_loop(
    tmp_path: Path,
) -> None:
    """The hang-up after the last failed attempt is a failure, not a way out."""
    nodes = {"m": menu("info"), "info": play("m")}
    assert summary(check(tmp_path, nodes)) == [
        ("m", LOOP + "m -> info -> m; no hangup or transfer node can be reached from m, info")
    ]
    nodes_with_exit = {"m": menu("info", on_failure="bye"), "info": play("m"), "bye": HANGUP}
    assert check(tmp_path, nodes_with_exit) == []


def test_given_a_transfer_then_it_is_an_exit(tmp_path: Path) -> None:
    assert check(tmp_path, {"a": play("b"), "b": play("t"), "t": TRANSFER}) == []


def test_given_a_condition_or_lookup_with_one_branch_out_then_fine(tmp_path: Path) -> None:
    nodes = {
        "c": {
            "type": "condition",
            "branches": [{"when": {"attr": "x", "present": True}, "goto": "loop"}],
            "otherwise": "l",
        },
        "l": {
            "type": "lookup",
            "url": "http://crm/{x}",
            "next": "end",
            "on_failure": "loop",
        },
        "loop": play("c"),
        "end": HANGUP,
    }
    assert check(tmp_path, nodes) == []


def test_given_two_separate_loops_then_both_are_reported(tmp_path: Path) -> None:
    nodes = {
        "m": menu("a", "c", "end"),
        "a": play("b"),
        "b": play("a"),
        "c": play("d"),
        "d": play("c"),
        "end": HANGUP,
    }
    assert [p.node for p in check(tmp_path, nodes)] == ["a", "c"]


def test_given_a_node_that_failed_to_read_then_no_loop_is_claimed_through_it(
    tmp_path: Path,
) -> None:
    nodes = {"a": play("b"), "b": {"type": "hangupp"}}
    assert [p.key for p in check(tmp_path, nodes)] == ["type"]


# ---- menu depth -------------------------------------------------------------------------------


def chain(n: int) -> dict[str, object]:
    """m1 -> m2 -> ... -> mn -> end, with a play between each pair of menus."""
    nodes: dict[str, object] = {}
    for i in range(1, n + 1):
        nodes[f"m{i}"] = menu(f"p{i}")
        nodes[f"p{i}"] = play(f"m{i + 1}" if i < n else "end")
    nodes["end"] = HANGUP
    return nodes


def test_given_menus_nested_deeper_than_the_maximum_then_the_deepest_is_named(
    tmp_path: Path,
) -> None:
    problems = check(tmp_path, chain(5), max_menu_depth=4)
    assert summary(problems) == [
        ("m5", "menus nested 5 deep (m1 -> m2 -> m3 -> m4 -> m5); max_menu_depth is 4")
    ]
    assert check(tmp_path, chain(5), max_menu_depth=5) == []


def test_given_back_links_to_the_main_menu_then_the_depth_does_not_grow(tmp_path: Path) -> None:
    """main -> sub -> subsub, each with "back to main": three deep, not endless."""
    nodes = {
        "main": menu("sub", "end"),
        "sub": menu("subsub", "main"),
        "subsub": menu("main", "end"),
        "end": HANGUP,
    }
    assert check(tmp_path, nodes, max_menu_depth=3) == []
    assert summary(check(tmp_path, nodes, max_menu_depth=2)) == [
        ("subsub", "menus nested 3 deep (main -> sub -> subsub); max_menu_depth is 2")
    ]


def test_given_a_start_that_is_not_a_menu_then_depth_counts_menus_only(tmp_path: Path) -> None:
    nodes = {"hello": play("x"), "x": play("m1"), **chain(2)}
    assert check(tmp_path, nodes, start="hello", max_menu_depth=2) == []


# ---- properties -------------------------------------------------------------------------------

KINDS = st.sampled_from(["play", "menu", "hangup"])


Graph = tuple[list[str], dict[str, str], dict[str, list[str]], dict[str, str]]


@st.composite
def graphs(draw: st.DrawFn) -> Graph:
    """Node ids, their kinds, their targets (play: next; menu: options) and the menus'
    on_failure (some menus have none). Start is n0."""
    n = draw(st.integers(1, 8))
    ids = [f"n{i}" for i in range(n)]
    kinds = {i: draw(KINDS) for i in ids}
    target = st.sampled_from(ids)
    targets: dict[str, list[str]] = {}
    on_failure: dict[str, str] = {}
    for i in ids:
        if kinds[i] == "play":
            targets[i] = [draw(target)]
        elif kinds[i] == "menu":
            targets[i] = draw(st.lists(target, min_size=1, max_size=3))
            if draw(st.booleans()):
                on_failure[i] = draw(target)
        else:
            targets[i] = []
    return ids, kinds, targets, on_failure


def edges_of(graph: Graph) -> dict[str, list[str]]:
    _ids, _kinds, targets, on_failure = graph
    return {i: [*ts, *([on_failure[i]] if i in on_failure else [])] for i, ts in targets.items()}


def brute_trapped(ids: list[str], kinds: dict[str, str], edges: dict[str, list[str]]) -> set[str]:
    """Reachable from n0 and no hangup reachable from there: by a search from each node."""
    trapped = set()
    for i in reachable(["n0"], edges):
        seen, todo = {i}, [i]
        while todo:
            for t in edges[todo.pop()]:
                if t not in seen:
                    seen.add(t)
                    todo.append(t)
        if not any(kinds[s] == "hangup" for s in seen):
            trapped.add(i)
    return trapped


def on_cycle(node: str, edges: dict[str, list[str]]) -> bool:
    return node in reachable(edges[node], edges)


@settings(max_examples=400, deadline=None)
@given(graphs())
def test_loops_without_exit_agrees_with_brute_force(graph: Graph) -> None:
    ids, kinds, _, _ = graph
    edges = edges_of(graph)
    order = [i for i in ids if i in reachable(["n0"], edges)]
    loops = loops_without_exit(order, edges, {i for i in ids if kinds[i] == "hangup"})
    trapped = brute_trapped(ids, kinds, edges)
    members = [m for loop in loops for m in loop]
    assert len(members) == len(set(members))  # each node in one loop at most
    assert set(members) <= trapped
    assert all(on_cycle(m, edges) for m in members)
    for loop in loops:  # a loop is strongly connected
        assert all(b in reachable([a], edges) for a in loop for b in loop)
    # every trapped node leads into a reported loop
    assert all(reachable([t], edges) & set(members) for t in trapped)
    assert bool(loops) == bool(trapped)


def flow_yaml(graph: Graph) -> str:
    ids, kinds, targets, on_failure = graph
    nodes: dict[str, object] = {}
    for i in ids:
        if kinds[i] == "play":
            nodes[i] = play(targets[i][0])
        elif kinds[i] == "menu":
            nodes[i] = menu(*targets[i], on_failure=on_failure.get(i))
        else:
            nodes[i] = HANGUP
    return yaml.safe_dump({"flow": "g", "dids": ["1500"], "start": "n0", "nodes": nodes})


@settings(max_examples=100, deadline=None)
@given(graphs())
def test_given_a_random_flow_file_then_loop_errors_agree_with_brute_force(graph: Graph) -> None:
    ids, kinds, _, _ = graph
    edges = edges_of(graph)
    text = flow_yaml(graph)
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "g.yaml"
        path.write_text(text)
        try:
            load_flow(path, known_queues=(), sound_dirs=None, max_menu_depth=20)
            problems: list[FlowProblem] = []
        except FlowError as err:
            problems = list(err.problems)
    loops = [p for p in problems if p.expected.startswith(LOOP)]
    members = {m for p in loops for m in p.expected.split("can be reached from ", 1)[1].split(", ")}
    trapped = brute_trapped(ids, kinds, edges)
    assert bool(loops) == bool(trapped)
    assert members <= trapped
    assert all(p.node in members for p in loops)
    assert all(reachable([t], edges) & members for t in trapped)
    unreachable = {p.node for p in problems if p.expected.startswith("unreachable")}
    assert unreachable == set(ids) - reachable(["n0"], edges)


def brute_depth(start: str, kinds: dict[str, str], edges: dict[str, list[str]]) -> int:
    """The most distinct menus on a walk from ``start`` that never enters a menu twice."""
    best = 0
    first = frozenset([start]) if kinds[start] == "menu" else frozenset[str]()
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(start, first)]
    while todo:
        node, menus = todo.pop()
        if (node, menus) in seen:
            continue
        seen.add((node, menus))
        best = max(best, len(menus))
        for t in edges[node]:
            if kinds[t] == "menu":
                if t not in menus:
                    todo.append((t, menus | {t}))
            else:
                todo.append((t, menus))
    return best


@settings(max_examples=400, deadline=None)
@given(graphs(), st.integers(1, 4))
def test_menus_too_deep_agrees_with_brute_force(graph: Graph, max_depth: int) -> None:
    _ids, kinds, _, _ = graph
    edges = edges_of(graph)
    menus = {i for i, k in kinds.items() if k == "menu"}
    deep = menus_too_deep("n0", edges, menus, max_depth)
    assert deep is not None  # 8 nodes never need 100 000 paths
    assert bool(deep) == (brute_depth("n0", kinds, edges) > max_depth)
    for last, path in deep.items():
        assert path[-1] == last
        assert len(path) == max_depth + 1
        assert len(set(path)) == len(path)
        assert set(path) <= menus


def test_given_menus_all_linked_to_each_other_then_the_depth_search_gives_up_with_a_warning(
    tmp_path: Path,
) -> None:
    """Longest simple paths are exponential: 9 menus each offering the 8 others are 8! paths
    and more; none is deeper than 9, but the search cannot afford to find that out."""
    names = [f"m{i}" for i in range(9)]
    edges = {m: [o for o in names if o != m] for m in names}
    edges["m0"].append("m9")  # a tenth menu, so that nesting 10 deep is conceivable
    edges["m9"] = []
    menus = {*names, "m9"}
    assert menus_too_deep("m0", edges, menus, 9, max_paths=1000) is None
    assert menus_too_deep("m0", edges, menus, 9) is None
    found = menus_too_deep("m0", edges, menus, 3, max_paths=1000)
    assert found  # what was found before giving up is reported
    nodes: dict[str, object] = {m: menu(*edges[m], on_failure="end") for m in names}
    nodes["m9"] = menu("end")
    nodes["end"] = HANGUP
    path = tmp_path / "dense.yaml"
    path.write_text(yaml.safe_dump({"flow": "d", "dids": ["1500"], "start": "m0", "nodes": nodes}))
    flows = load_flows([path], known_queues=(), sound_dirs=None, max_menu_depth=9)
    assert flows.warnings == (
        f"{path}: start: menu depth not checked: more than 100000 paths through the menus",
    )


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ({"a": ["b"], "b": ["a"]}, {"a", "b"}),
        ({"a": ["b"], "b": []}, {"a", "b"}),
        ({"a": [], "b": ["a"]}, {"a"}),
    ],
)
def test_reachable(edges: dict[str, list[str]], expected: set[str]) -> None:
    assert reachable(["a"], edges) == expected
