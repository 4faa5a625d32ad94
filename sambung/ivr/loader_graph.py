"""Graph analysis of a flow, pure: what is reachable, loops with no way out, menus too deep.

Nodes are ids and edges a mapping of id -> the ids it can go to; nothing here knows about
files or problems (``ivr.loader_checks`` turns the answers into problems).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterable, Mapping, Sequence

__all__ = ["MAX_MENU_PATHS", "loops_without_exit", "menus_too_deep", "reachable", "shortest_cycle"]

# Menu paths the depth check follows before it gives up (a warning): far more than any flow a
# person can keep in mind has, and a fraction of a second.
MAX_MENU_PATHS = 100_000


def reachable(roots: Iterable[str], edges: Mapping[str, Iterable[str]]) -> set[str]:
    """Every node reachable from ``roots`` (the roots included)."""
    seen: set[str] = set()
    todo = deque(roots)
    while todo:
        n = todo.popleft()
        if n in seen:
            continue
        seen.add(n)
        todo.extend(t for t in edges.get(n, ()) if t not in seen)
    return seen


def loops_without_exit(
    nodes: Sequence[str], edges: Mapping[str, Iterable[str]], exits: Collection[str]
) -> list[tuple[str, ...]]:
    """The loops (strongly connected sets with a cycle) of ``nodes`` from which no node of
    ``exits`` can be reached, each in ``nodes`` order, in the order of their first node.

    Every node of ``nodes`` that cannot reach an exit leads into one of them: each node has a
    successor unless it is an exit, so following successors ends in a cycle.
    """
    node_set = set(nodes)
    succ = {n: [t for t in edges.get(n, ()) if t in node_set] for n in nodes}
    pred: dict[str, list[str]] = {n: [] for n in nodes}
    for n, targets in succ.items():
        for t in targets:
            pred[t].append(n)
    can_exit = reachable((n for n in nodes if n in exits), pred)
    trapped = [n for n in nodes if n not in can_exit]
    trapped_set = set(trapped)
    trapped_succ = {n: [t for t in succ[n] if t in trapped_set] for n in trapped}
    # Flows are small (tens of nodes): mutual reachability is simple and obviously right.
    ahead = {n: reachable(trapped_succ[n], trapped_succ) for n in trapped}
    loops: list[tuple[str, ...]] = []
    placed: set[str] = set()
    for n in trapped:
        if n in placed or n not in ahead[n]:
            continue  # already in a loop found, or on no cycle (it leads into one)
        members = tuple(m for m in trapped if m in ahead[n] and n in ahead[m])
        placed.update(members)
        loops.append(members)
    return loops


def menus_too_deep(
    start: str,
    edges: Mapping[str, Iterable[str]],
    menus: Collection[str],
    max_depth: int,
    *,
    max_paths: int = MAX_MENU_PATHS,
) -> dict[str, tuple[str, ...]] | None:
    """Menus that some path from ``start`` reaches as its ``max_depth + 1``-th distinct menu,
    each with the first such path found (the menus along it).

    A path may pass other nodes any number of times but counts each menu once: the search is
    over simple paths in the graph of "menu -> the menus reachable through non-menu nodes".
    That is exponential in the worst case (menus all linked to each other); after
    ``max_paths`` paths the search gives up: it returns None, or the menus found too deep so
    far if there are any.
    """
    if len(menus) <= max_depth:
        return {}

    def menus_ahead(origin: str) -> list[str]:
        found: list[str] = []
        seen = {origin}
        todo = deque(edges.get(origin, ()))
        while todo:
            n = todo.popleft()
            if n in seen:
                continue
            seen.add(n)
            if n in menus:
                found.append(n)
            else:
                todo.extend(edges.get(n, ()))
        return found

    ahead: dict[str, list[str]] = {}
    too_deep: dict[str, tuple[str, ...]] = {}
    paths = 0

    def walk(path: tuple[str, ...]) -> bool:
        """False when the search gave up."""
        nonlocal paths
        paths += 1
        if paths > max_paths:
            return False
        last = path[-1]
        if len(path) > max_depth:
            too_deep.setdefault(last, path)
            return True
        if last not in ahead:
            ahead[last] = menus_ahead(last)
        return all(walk((*path, m)) for m in ahead[last] if m not in path)

    firsts = [start] if start in menus else menus_ahead(start)
    if not all(walk((m,)) for m in firsts) and not too_deep:
        return None  # (menus found too deep are problems even if there may be more)
    return too_deep


def shortest_cycle(first: str, edges: Mapping[str, Sequence[str]], within: set[str]) -> list[str]:
    """A shortest cycle through ``first`` inside ``within``: [first, ..., first]."""
    parent: dict[str, str] = {}
    todo = deque([first])
    while todo:
        n = todo.popleft()
        for t in edges.get(n, ()):
            if t not in within:
                continue
            if t == first:
                path = [n]
                while path[-1] != first:
                    path.append(parent[path[-1]])
                return [*reversed(path), first]
            if t not in parent:
                parent[t] = n
                todo.append(t)
    return [first, first]  # unreachable for a loop: first lies on a cycle
