"""Pure functions on lineage graphs: walks, cycle checks, diffs as text, and Graphviz output.

A graph here is ``parents: Mapping[str, str | None]``, each version id mapped to its parent's
id (None for a root) -- the shape ``VersionStore.edges()`` returns. The registry's SQL does the
walking on stored data (recursive CTEs); these functions state the rules in plain Python, so
tests can check the database against them and callers can reason about graphs in memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..records.versions import Lineage, LineageEdge, VersionSummary

__all__ = ["ancestors", "descendants", "format_diff", "is_acyclic", "to_dot", "would_cycle"]


def ancestors(parents: Mapping[str, str | None], node: str) -> list[str]:
    """Parent, grandparent, ..., root of ``node`` (ValueError if the walk meets a cycle)."""
    out: list[str] = []
    seen = {node}
    cur = parents.get(node)
    while cur is not None:
        if cur in seen:
            raise ValueError(f"cycle through {cur!r}")
        seen.add(cur)
        out.append(cur)
        cur = parents.get(cur)
    return out


def descendants(parents: Mapping[str, str | None], node: str) -> list[str]:
    """Children, grandchildren, ... of ``node``, breadth first."""
    children: dict[str, list[str]] = {}
    for child, parent in parents.items():
        if parent is not None:
            children.setdefault(parent, []).append(child)
    out: list[str] = []
    frontier = sorted(children.get(node, ()))
    seen = {node}
    while frontier:
        nxt: list[str] = []
        for c in frontier:
            if c in seen:
                continue
            seen.add(c)
            out.append(c)
            nxt.extend(sorted(children.get(c, ())))
        frontier = nxt
    return out


def would_cycle(parents: Mapping[str, str | None], child: str, parent: str) -> bool:
    """Whether making ``parent`` the parent of ``child`` would close a cycle."""
    if child == parent:
        return True
    try:
        return child in ancestors(parents, parent)
    except ValueError:
        return True


def is_acyclic(parents: Mapping[str, str | None]) -> bool:
    """Whether following parent links from every node ends at a root, with every parent present."""
    state: dict[str, int] = {}  # 1: on the current path, 2: known to reach a root
    for start in parents:
        path = []
        node: str | None = start
        while node is not None and state.get(node) != 2:
            if state.get(node) == 1:
                return False
            if node not in parents:
                return False  # dangling parent link
            state[node] = 1
            path.append(node)
            node = parents[node]
        for p in path:
            state[p] = 2
    return True


def format_diff(diff: Mapping[str, tuple[Any, Any]]) -> str:
    """``lr 0.1 -> 0.01, dropout 0.0 -> 0.2`` (``same params`` when empty)."""
    if not diff:
        return "same params"
    return ", ".join(f"{k} {_short(a)} -> {_short(b)}" for k, (a, b) in diff.items())


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, list):
        return ",".join(map(_short, v))
    return str(v)


def _label(v: VersionSummary) -> str:
    parts = [v.ref, v.short_id, v.family]
    if v.key_metric and v.key_value is not None:
        parts.append(f"{v.key_metric}={v.key_value:.4g}")
    if v.aliases:
        parts.append("[" + ", ".join(v.aliases) + "]")
    return "\\n".join(_escape(p) for p in parts)


def _edge_label(e: LineageEdge) -> str:
    parts = [format_diff(e.diff), "retrained" if e.retrained else "same weights"]
    if e.via:
        parts.append(f"via {len(e.via)} deleted")
    return "\\n".join(_escape(p) for p in parts)


def _escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')


def to_dot(lineage: Lineage) -> str:
    """The lineage as a Graphviz digraph (parent -> child; the asked-for version in bold)."""
    nodes = [*reversed(lineage.ancestors), lineage.version, *lineage.descendants]
    lines = ["digraph lineage {", "  rankdir=LR;", '  node [shape=box, fontname="Helvetica"];']
    for v in nodes:
        style = ", style=bold, penwidth=2" if v.id == lineage.version.id else ""
        lines.append(f'  "{v.id}" [label="{_label(v)}"{style}];')
    for e in lineage.edges:
        style = "" if e.retrained else ", style=dashed"
        lines.append(f'  "{e.parent_id}" -> "{e.child_id}" [label="{_edge_label(e)}"{style}];')
    lines.append("}")
    return "\n".join(lines) + "\n"
