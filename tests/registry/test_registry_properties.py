"""Laws of the registry under random sequences of operations (hypothesis state machine).

Whatever users do -- register, branch, delete (forced or not), set aliases, roll back -- the
parent links stay a DAG matching a plain-Python model of the rules, every version keeps
exactly one lineage row, ancestors agree with the model, and rollback(v) = parent(v).
"""

from __future__ import annotations

import shutil
import tempfile

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from modelyard.errors import LineageError, NotFoundError
from modelyard.registry import lineage
from modelyard.testing.results import sample_result
from modelyard.yard import Yard

NAMES = ("a", "b")
ALIASES = ("production", "staging")


@pytest.fixture(scope="module")
def result():
    import torch

    torch.set_num_threads(1)
    return sample_result()


def test_lineage_laws_hold_under_random_operations(result, tmp_path):
    class RegistryMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.folder = tempfile.mkdtemp(dir=tmp_path)
            self.yard = Yard(self.folder)
            self.reg = self.yard.registry
            self.parent: dict[str, str | None] = {}
            self.name: dict[str, str] = {}
            self.alias: dict[tuple[str, str], str] = {}

        def teardown(self):
            self.yard.close()
            shutil.rmtree(self.folder, ignore_errors=True)

        def _pick(self, i, name=None):
            live = [v for v in self.parent if name is None or self.name[v] == name]  # creation order: replayable
            return live[i % len(live)] if live else None

        @rule(name=st.sampled_from(NAMES))
        def register_root(self, name):
            v = self.reg.register(result, name)
            self.parent[v.id], self.name[v.id] = None, name

        @precondition(lambda self: self.parent)
        @rule(i=st.integers(0, 999), lr=st.sampled_from([0.001, 0.01, 0.1]), retrain=st.booleans())
        def add_child(self, i, lr, retrain):
            p = self._pick(i)
            if retrain:  # a new training result whose parent is p
                v = self.reg.register(result, self.name[p], parent=p)
            else:
                v = self.reg.branch(p, {"learning_rate": lr})
            self.parent[v.id], self.name[v.id] = p, self.name[p]
            assert v.parent_id == p

        @precondition(lambda self: self.parent)
        @rule(i=st.integers(0, 999), force=st.booleans())
        def delete(self, i, force):
            v = self._pick(i)
            children = [c for c, p in self.parent.items() if p == v]
            held = [k for k, t in self.alias.items() if t == v]
            if (children or held) and not force:
                try:
                    self.reg.delete(v)
                except LineageError:
                    return
                raise AssertionError("delete with children or aliases was not refused")
            d = self.reg.delete(v, force=force)
            assert sorted(d.reparented) == sorted(children)
            assert sorted((m.name, m.alias) for m in d.dropped) == sorted(held)
            for c in children:
                self.parent[c] = self.parent[v]
            for k in held:
                del self.alias[k]
            del self.parent[v], self.name[v]

        @precondition(lambda self: self.parent)
        @rule(i=st.integers(0, 999), alias=st.sampled_from(ALIASES))
        def set_alias(self, i, alias):
            v = self._pick(i)
            self.reg.set_alias(self.name[v], alias, v, reason="property test")
            self.alias[(self.name[v], alias)] = v

        @rule(name=st.sampled_from(NAMES), alias=st.sampled_from(ALIASES))
        def rollback(self, name, alias):
            held = self.alias.get((name, alias))
            if held is None or self.parent[held] is None:
                expected = NotFoundError if held is None else LineageError
                try:
                    self.reg.rollback(name, alias)
                except expected:
                    return
                except NotFoundError:  # the model name itself does not exist yet
                    assert held is None
                    return
                raise AssertionError("rollback without a parent was not refused")
            move = self.reg.rollback(name, alias)
            assert move.from_id == held and move.to_id == self.parent[held]  # rollback(v) = parent(v)
            self.alias[(name, alias)] = self.parent[held]

        @invariant()
        def graph_matches_the_rules(self):
            edges = self.reg.versions.edges()
            assert edges == self.parent
            assert {s.id: s.parent_id for s in self.reg.list()} == self.parent  # the listing's copy agrees
            assert lineage.is_acyclic(edges)
            for v in list(self.parent)[:3]:
                assert [s.id for s in self.reg.ancestors(v)] == lineage.ancestors(self.parent, v)
                assert {s.id for s in self.reg.descendants(v)} == set(lineage.descendants(self.parent, v))

        @invariant()
        def aliases_match(self):
            for name in NAMES:
                if any(self.name[v] == name for v in self.parent) or any(k[0] == name for k in self.alias):
                    try:
                        got = self.reg.aliases(name)
                    except NotFoundError:
                        got = {}
                    assert got == {a: v for (n, a), v in self.alias.items() if n == name}

    run_state_machine_as_test(
        RegistryMachine,
        settings=settings(max_examples=25, stateful_step_count=20, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow]),
    )
