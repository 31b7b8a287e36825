"""Pure lineage functions: walks, cycle checks, acyclicity of graphs grown by the registry's rules, DOT output."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from modelyard.records.versions import Lineage, LineageEdge, VersionSummary
from modelyard.registry import lineage


def _grow(choices: list[int]) -> dict[str, str | None]:
    """A graph grown as the registry grows one: each new node's parent already exists (or it is a root)."""
    parents: dict[str, str | None] = {}
    for i, c in enumerate(choices):
        nodes = list(parents)
        parents[f"v{i}"] = None if not nodes or c == 0 else nodes[c % len(nodes)]
    return parents


@given(st.lists(st.integers(0, 50), max_size=40))
def test_graphs_grown_parent_first_are_acyclic(choices):
    parents = _grow(choices)
    assert lineage.is_acyclic(parents)
    for v in parents:
        anc = lineage.ancestors(parents, v)
        assert len(anc) == len(set(anc)) and v not in anc
        assert all(v in lineage.descendants(parents, a) for a in anc)
        # re-parenting a node to one of its ancestors (what a forced delete does) keeps the graph acyclic
        for a in anc:
            assert not lineage.would_cycle(parents, v, a)
        # and making any descendant (or itself) its parent is exactly what would close a cycle
        for d in [v, *lineage.descendants(parents, v)]:
            assert lineage.would_cycle(parents, v, d)


def test_cycles_and_dangling_links_are_detected():
    assert not lineage.is_acyclic({"a": "b", "b": "a"})
    assert not lineage.is_acyclic({"a": "a"})
    assert not lineage.is_acyclic({"a": "missing"})
    assert lineage.is_acyclic({"a": None, "b": "a", "c": "b", "d": "a"})
    assert lineage.ancestors({"a": None, "b": "a", "c": "b"}, "c") == ["b", "a"]
    assert lineage.descendants({"a": None, "b": "a", "c": "b", "d": "a"}, "a") == ["b", "d", "c"]


def test_format_diff():
    assert lineage.format_diff({}) == "same params"
    assert lineage.format_diff({"learning_rate": (0.1, 0.01), "hidden_sizes": ([64], [128, 64])}) == (
        "learning_rate 0.1 -> 0.01, hidden_sizes 64 -> 128,64")


def _summary(i, parent=None, aliases=()):
    return VersionSummary(id=f"{i:064x}", name="churn", number=i, family="mlp", task="classification",
                          key_metric="f1", key_value=0.9, parent_id=parent, aliases=aliases, created_at=0.0,
                          creator="u")


def test_dot_output_draws_every_node_and_edge():
    a, b, c = _summary(1), _summary(2, f"{1:064x}", ("production",)), _summary(3, f"{2:064x}")
    lin = Lineage(b, (a,), (c,), (
        LineageEdge(b.id, a.id, {"learning_rate": (0.1, 0.01)}, False),
        LineageEdge(c.id, b.id, {}, True, via=("x" * 64,)),
    ))
    dot = lineage.to_dot(lin)
    assert dot.startswith("digraph lineage {") and dot.rstrip().endswith("}")
    for v in (a, b, c):
        assert f'"{v.id}" [label="{v.ref}\\n{v.short_id}' in dot
    assert f'"{a.id}" -> "{b.id}" [label="learning_rate 0.1 -> 0.01\\nsame weights", style=dashed]' in dot
    assert f'"{b.id}" -> "{c.id}" [label="same params\\nretrained\\nvia 1 deleted"]' in dot
    assert "[production]" in dot and "penwidth=2" in dot
