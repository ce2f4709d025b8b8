"""The integration test paths (autocoder.flowpaths): which exist, what each holds, their ids,
the same from the blueprint's outline (task loading) as from the IR (code generation), and
what each path's generated test sends and expects."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import REPO, compile_data, dump

from autocoder.codegen.path_tests import path_expectations, system_flow_paths
from autocoder.flowpaths import FlowPath, flow_paths
from autocoder.tasks.compile_tasks import OUTLINE_CACHE, project_paths

ID = re.compile(r"[a-z][a-z0-9_]*")


def test_orders_has_one_path_per_end_each_with_the_components_on_it(arch):
    paths = system_flow_paths(compile_data(arch).ir)
    assert paths == [
        FlowPath(
            "orders_api__notifier",
            "orders_api",
            "notifier",
            ("big_orders", "notifier", "orders_api", "pricer"),
        ),
        FlowPath(
            "orders_api__order_store", "orders_api", "order_store", ("order_store", "orders_api", "pricer")
        ),
    ]


def test_a_diamond_is_one_path_and_a_side_branch_is_not_on_it():
    kinds = {"api": "api_endpoint", "a": "transformer", "b": "transformer", "db": "store", "log": "sink"}
    edges = [("api", "a"), ("api", "b"), ("a", "db"), ("b", "db"), ("api", "log")]
    assert flow_paths(kinds, edges) == [
        FlowPath("api__db", "api", "db", ("a", "api", "b", "db")),
        FlowPath("api__log", "api", "log", ("api", "log")),
    ]


def test_sources_start_paths_and_a_dangling_component_ends_one():
    kinds = {"tick": "source", "t": "transformer", "f": "filter"}
    assert flow_paths(kinds, [("tick", "t"), ("t", "f")]) == [
        FlowPath("tick__f", "tick", "f", ("f", "t", "tick"))
    ]


def test_ids_that_would_collide_get_a_short_stable_hash():
    kinds = {"a__b": "api_endpoint", "c": "store", "a": "api_endpoint", "b__c": "store"}
    paths = flow_paths(kinds, [("a__b", "c"), ("a", "b__c")])
    ids = [p.id for p in paths]
    assert len(set(ids)) == 2 and all(i.startswith("a__b__c_") and ID.fullmatch(i) for i in ids)
    assert ids == [p.id for p in flow_paths(dict(reversed(kinds.items())), [("a", "b__c"), ("a__b", "c")])]


def test_unknown_names_and_self_loops_are_ignored():
    kinds = {"api": "api_endpoint", "db": "store"}
    assert [p.id for p in flow_paths(kinds, [("api", "db"), ("api", "ghost"), ("db", "db")])] == ["api__db"]


@pytest.mark.parametrize("example", sorted(p.name for p in (REPO / "examples").iterdir()))
def test_the_outline_finds_the_same_paths_as_the_ir(example, tmp_path):
    """doit names the path tasks from the outline before `ir` runs; code generation writes
    their tests from the IR: both must agree, from a fresh parse and from the outline cache."""
    project = tmp_path / example
    shutil.copytree(REPO / "examples" / example, project, ignore=shutil.ignore_patterns("generated"))
    arch, deploy = ((project / n).read_bytes() for n in ("architecture.yaml", "deployment.yaml"))
    from autocoder.compile import compile_sources

    expected = system_flow_paths(compile_sources(arch, deploy).ir)
    assert expected and project_paths(project) == expected
    assert (project / OUTLINE_CACHE).exists()
    from autocoder.tasks import compile_tasks

    compile_tasks._outline.cache_clear()
    compile_tasks._flow_paths.cache_clear()
    assert project_paths(project) == expected  # from the cache file


def test_malformed_bindings_cost_the_paths_not_the_components(arch, tmp_path: Path):
    arch["bindings"][0]["from"] = 7
    (tmp_path / "architecture.yaml").write_bytes(dump(arch))
    from autocoder.tasks.compile_tasks import blueprint_outline

    assert blueprint_outline(tmp_path) is not None and project_paths(tmp_path) == []


def test_a_path_test_expects_records_only_where_nothing_may_drop_the_message(arch):
    ir = compile_data(arch).ir
    store, notifier = (
        next(p for p in system_flow_paths(ir) if p.end == end) for end in ("order_store", "notifier")
    )
    to_store = path_expectations(ir, store)
    assert to_store["arrive"] and to_store["records"] == [["/orders", "order_id", 10.0]]
    assert [r["path"] for r in to_store["routes"]] == ["/orders"]
    to_notifier = path_expectations(ir, notifier)  # through the big_orders filter
    assert not to_notifier["arrive"] and not to_notifier["records"]
    assert ["big_orders.out", "notifier.in", None] in to_notifier["wiring"]


def test_a_condition_on_the_path_is_in_its_test(arch):
    arch["bindings"][2]["condition"] = "total > 1"
    ir = compile_data(arch).ir
    (notifier,) = [p for p in system_flow_paths(ir) if p.end == "notifier"]
    assert ["big_orders.out", "notifier.in", "total > 1"] in path_expectations(ir, notifier)["wiring"]
