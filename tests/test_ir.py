"""The IR: content, determinism, slices rewritten only on change, atomic writes, JSON Schemas."""

from __future__ import annotations

import hashlib
import json
import os

import jsonschema
import pytest
from conftest import EXAMPLE, REPO, compile_data, component, dump
from pydantic import ValidationError

from autocoder import fsutil
from autocoder.canonical import canonical_json, content_hash
from autocoder.compile import compile_directory
from autocoder.ir.models import RateLimitIR, StoreIR, TransformerIR, load_ir, load_slice
from autocoder.ir.models import dump as ir_dump
from autocoder.ir.write import write_ir
from autocoder.schemas_gen import SCHEMAS, check_schemas, schema_document


def test_ir_content(arch):
    ir = compile_data(arch).ir
    assert ir is not None and ir.ir_version == "1.0.0"
    order = ir.topology
    assert sorted(order) == sorted(c.name for c in ir.components)
    for binding in ir.bindings:
        for target in binding.to:
            assert order.index(binding.source.component) < order.index(target.component)
    pricer = next(c for c in ir.components if c.name == "pricer")
    assert isinstance(pricer, TransformerIR) and pricer.logic is not None
    assert pricer.logic.set["total"].python == "msg['quantity'] * msg['unit_price']"
    assert pricer.logic_source == "declarative"
    assert ir.schemas["PricedOrder"].fields.keys() == {"order_id", "quantity", "unit_price", "total"}
    api = next(c for c in ir.components if c.name == "orders_api")
    # the deployment override is merged into the component
    assert api.capabilities.rate_limit == RateLimitIR(rate=1000, burst=2000)
    assert api.logic_source == "builtin"
    store = next(c for c in ir.components if c.name == "order_store")
    assert isinstance(store, StoreIR) and store.deployment.store.backend == "sqlite"
    assert [s.path for s in ir.metadata.sources] == ["architecture.yaml", "deployment.yaml"]


def test_ir_and_slices_validate_against_their_json_schemas(arch):
    result = compile_data(arch)
    assert result.ir is not None
    jsonschema.validate(ir_dump(result.ir), schema_document("ir.v1.schema.json"))
    for data in result.slices.values():
        jsonschema.validate(ir_dump(data), schema_document("ir-slice.v1.schema.json"))


ROUND_TRIP = [*sorted((REPO / "examples").iterdir()), REPO / "tests" / "fixtures" / "every_kind"]


@pytest.mark.parametrize("project", ROUND_TRIP, ids=lambda p: p.name)
def test_ir_files_load_into_models_that_write_the_same_bytes(tmp_path, project):
    """The typed models are the IR: what a stage loads from disk dumps back byte for byte, and
    numbers keep their JSON type (a default rate of 1000 stays an int, an override's 50.0 a float)."""
    result = compile_directory(project)
    assert result.ir is not None
    write_ir(tmp_path, result.ir, result.slices)
    files = [tmp_path / "ir.v1.json", *sorted((tmp_path / "ir").glob("*.json"))]
    assert len(files) == len(result.slices) + 1
    for path in files:
        raw = path.read_bytes()
        model = load_ir(path) if path.name == "ir.v1.json" else load_slice(path)
        assert canonical_json(ir_dump(model)) == raw, path.name
        if path.name != "ir.v1.json":  # the fingerprint is the hash of the slice as written
            data = json.loads(raw)
            fingerprint, data["component"]["fingerprint"] = data["component"]["fingerprint"], ""
            assert content_hash(data) == fingerprint, path.name
    loaded = load_ir(tmp_path / "ir.v1.json")
    assert loaded == result.ir
    assert {name: load_slice(tmp_path / "ir" / f"{name}.json") for name in result.slices} == result.slices


def test_int_and_float_numbers_keep_their_type_through_the_models():
    raw = b'{"rate": 1000, "burst": 5}'
    assert type(RateLimitIR.model_validate_json(raw).rate) is int
    assert type(RateLimitIR.model_validate_json(b'{"rate": 50.0, "burst": 5}').rate) is float


def test_a_slice_of_the_wrong_shape_is_refused_with_the_key_named(tmp_path, arch):
    result = compile_data(arch)
    data = ir_dump(result.slices["pricer"])
    data["component"]["config"] = {"target": "log"}  # a transformer takes no config
    path = tmp_path / "pricer.json"
    path.write_bytes(canonical_json(data))
    with pytest.raises(ValidationError, match="target"):
        load_slice(path)


def test_blueprints_validate_against_their_json_schemas():
    import yaml

    for name in ("architecture", "deployment"):
        data = yaml.safe_load((EXAMPLE / f"{name}.yaml").read_text())
        jsonschema.validate(data, schema_document(f"{name}.v1.schema.json"))


def test_schemas_in_the_repository_match_the_models():
    assert check_schemas(REPO / "schemas") == [], "run `autocoder schema` to regenerate schemas/"
    for filename in SCHEMAS:
        assert json.loads((REPO / "schemas" / filename).read_text())["$id"].endswith(filename)


def test_schema_drift_is_detected(tmp_path):
    from autocoder.schemas_gen import write_schemas

    write_schemas(tmp_path)
    assert check_schemas(tmp_path) == []
    path = tmp_path / "architecture.v1.schema.json"
    path.write_text(path.read_text().replace('"strict"', '"lenient"', 1) + " ")
    assert check_schemas(tmp_path) == ["architecture.v1.schema.json"]


def test_examples_carry_the_language_server_modeline():
    for path in sorted((REPO / "examples").glob("*/*.yaml")):
        first = path.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema=../../schemas/"), path


def test_compilation_is_byte_for_byte_deterministic(arch):
    first = compile_data(arch)
    second = compile_data(arch)
    assert first.ir is not None and second.ir is not None
    assert canonical_json(ir_dump(first.ir)) == canonical_json(ir_dump(second.ir))
    assert {k: canonical_json(ir_dump(v)) for k, v in first.slices.items()} == {
        k: canonical_json(ir_dump(v)) for k, v in second.slices.items()
    }


def test_fingerprint_changes_with_the_component_only(arch):
    before = compile_data(arch).ir
    component(arch, "pricer")["logic"]["set"]["total"] = "quantity * unit_price * 2"
    after = compile_data(arch).ir
    prints = lambda ir: {c.name: c.fingerprint for c in ir.components}  # noqa: E731
    changed = {name for name in prints(before) if prints(before)[name] != prints(after)[name]}
    assert changed == {"pricer"}


def _project(tmp_path, arch):
    (tmp_path / "architecture.yaml").write_bytes(dump(arch))
    (tmp_path / "deployment.yaml").write_bytes((EXAMPLE / "deployment.yaml").read_bytes())
    return tmp_path


def test_slices_are_rewritten_only_when_they_change(tmp_path, arch):
    project = _project(tmp_path, arch)
    result = compile_directory(project)
    written = write_ir(project / "generated", result.ir, result.slices)
    assert len(written) == 6
    assert write_ir(project / "generated", result.ir, result.slices) == []
    component(arch, "pricer")["logic"]["set"]["total"] = "quantity * unit_price * 2"
    _project(tmp_path, arch)
    result = compile_directory(project)
    written = write_ir(project / "generated", result.ir, result.slices)
    assert sorted(p.name for p in written) == ["ir.v1.json", "pricer.json"]


def test_slices_of_removed_components_are_deleted(tmp_path, arch):
    project = _project(tmp_path, arch)
    result = compile_directory(project)
    write_ir(project / "generated", result.ir, result.slices)
    arch["components"] = [c for c in arch["components"] if c["name"] != "notifier"]
    arch["bindings"].pop(2)
    component(arch, "big_orders")["outputs"] = {"out": "PricedOrder"}
    arch["components"].append({"name": "notifier2", "kind": "sink", "inputs": {"in": "PricedOrder"}})
    arch["bindings"].append({"from": "big_orders.out", "to": "notifier2.in"})
    _project(tmp_path, arch)
    result = compile_directory(project)
    write_ir(project / "generated", result.ir, result.slices)
    assert sorted(p.stem for p in (project / "generated" / "ir").iterdir()) == sorted(result.slices)


def test_atomic_write_keeps_the_old_file_when_the_write_fails(tmp_path, monkeypatch):
    target = tmp_path / "ir.v1.json"
    target.write_bytes(b"old")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space left"):
        fsutil.write_if_changed(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["ir.v1.json"]  # no temp file left behind


def test_atomic_write_removes_what_a_killed_writer_of_the_same_file_left_and_nothing_else(tmp_path):
    """A SIGKILLed writer leaves its temporary file (`.NAME.<random>.tmp`): the next write of
    that file removes it; another file's, or a name that only looks alike, stays."""
    target = tmp_path / "a[1].json"  # glob's special characters are plain here
    left = [tmp_path / ".a[1].json.x1y2.tmp", tmp_path / ".a[1].json..tmp"]
    kept = [tmp_path / ".a[1].json.tmp", tmp_path / ".b.json.x1y2.tmp", tmp_path / "a[1].json.x.tmp"]
    for path in left + kept:
        path.write_bytes(b"partial")
    fsutil.atomic_write(target, b"whole")
    assert target.read_bytes() == b"whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name] + [p.name for p in kept])


def test_write_if_changed_keeps_mtime_of_identical_files(tmp_path):
    target = tmp_path / "x.json"
    assert fsutil.write_if_changed(target, b"1")
    os.utime(target, (1, 1))
    assert not fsutil.write_if_changed(target, b"1")
    assert target.stat().st_mtime == 1


def test_ir_bytes_do_not_depend_on_hash_seed_or_process(tmp_path):
    import subprocess
    import sys

    outputs = []
    for seed in ("1", "2"):
        project = tmp_path / f"p{seed}"
        project.mkdir()
        for name in ("architecture.yaml", "deployment.yaml"):
            (project / name).write_bytes((EXAMPLE / name).read_bytes())
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = subprocess.run(
            [sys.executable, "-m", "autocoder.cli", "ir", str(project)],
            env=env,
            capture_output=True,
            text=True,
        )
        assert run.returncode == 0, run.stderr
        files = sorted((project / "generated").rglob("*.json"))
        outputs.append({p.relative_to(project).as_posix(): p.read_bytes() for p in files})
    assert outputs[0] == outputs[1]


def test_budgets_default_by_kind_plus_capabilities_and_tighten(arch):
    notifier = component(arch, "notifier")
    notifier["capabilities"] = {"retry": {"max_attempts": 2}, "timeout": {"seconds": 1}}
    ir = compile_data(arch).ir
    assert ir is not None
    budgets = {c.name: c.budget.p95_ms for c in ir.components}
    assert budgets["notifier"] == 5.0 + 0.2 + 0.5  # sink default + retry + timeout
    assert budgets["pricer"] == 2.0
    component(arch, "pricer")["budget"] = {"p95_ms": 0.5}  # a component may tighten
    arch["policy"]["performance"]["p95_ms"] = 0.25  # and so may the policy
    ir = compile_data(arch).ir
    assert ir is not None
    budgets = {c.name: c.budget.p95_ms for c in ir.components}
    assert budgets["pricer"] == 0.25 and budgets["notifier"] == 0.25


def test_unchanged_slices_are_not_encoded_again_unless_their_file_or_the_index_is_not_what_was_written(
    tmp_path, arch
):
    """The `ir` task skips encoding a slice whose fingerprint and file are as the last run left
    them (generated/.cache/ir-written.json); a file changed by hand, or an index that is
    corrupt or from another Autocoder, makes it encode and write the slice again."""
    from autocoder.ir.write import WRITTEN_INDEX

    project = _project(tmp_path, arch)
    generated = project / "generated"
    result = compile_directory(project)
    write_ir(generated, result.ir, result.slices)
    pricer = generated / "ir" / "pricer.json"
    index = generated / WRITTEN_INDEX
    expected = pricer.read_bytes()

    pricer.write_bytes(b"{}\n")  # a hand edit: the recorded sha256 no longer matches
    assert write_ir(generated, result.ir, result.slices) == [pricer]
    assert pricer.read_bytes() == expected

    # an index that vouches for the edited file: trusted (this is the skip), so the file stays
    pricer.write_bytes(b"{}\n")
    recorded = json.loads(index.read_bytes())
    recorded["slices"]["pricer"][1] = hashlib.sha256(b"{}\n").hexdigest()
    index.write_text(json.dumps(recorded))
    assert write_ir(generated, result.ir, result.slices) == []
    assert pricer.read_bytes() == b"{}\n"

    # the same index from another Autocoder version, or corrupt: ignored
    for bad in (json.dumps({**recorded, "version": "0.0.1"}), "{not json", '{"version": 1}'):
        pricer.write_bytes(b"{}\n")
        index.write_text(bad)
        assert write_ir(generated, result.ir, result.slices) == [pricer]
        assert pricer.read_bytes() == expected
    assert {p.name: p.read_bytes() for p in (generated / "ir").iterdir()} == {
        f"{name}.json": canonical_json(ir_dump(data)) for name, data in result.slices.items()
    }


@pytest.mark.parametrize("example", sorted(p.name for p in (REPO / "examples").iterdir() if p.is_dir()))
def test_ir_file_spliced_from_slices_is_the_plain_encoding(example):
    """ir.v1.json takes each component's text from its slice's bytes (write.encode_ir): the
    result is byte for byte canonical_json of the whole IR, and a slice that does not hold its
    component (empty, another component's, not UTF-8) has the component encoded afresh."""
    from autocoder.ir.write import encode_ir

    result = compile_directory(REPO / "examples" / example)
    assert result.ir is not None, result.diagnostics
    plain = canonical_json(ir_dump(result.ir))
    slices = [canonical_json(ir_dump(result.slices[c.name])) for c in result.ir.components]
    assert encode_ir(result.ir, slices) == plain
    wrong = [b"{}\n", b"\xff", *slices[1:], slices[0]][: len(slices)]
    assert encode_ir(result.ir, wrong) == plain


def test_ir_file_after_a_one_component_edit_is_the_plain_encoding(tmp_path, arch):
    """An edit re-encodes one slice; ir.v1.json, spliced from the other slices' files, still
    equals the plain encoding of the new IR (strings holding newlines, quotes and braces too)."""
    project = _project(tmp_path, arch)
    generated = project / "generated"
    result = compile_directory(project)
    write_ir(generated, result.ir, result.slices)
    component(arch, "pricer")["description"] = 'a "quoted"\n  }\n  "components": [] é\t{'
    (project / "architecture.yaml").write_bytes(dump(arch))
    edited = compile_directory(project)
    assert edited.ir is not None, edited.diagnostics
    written = write_ir(generated, edited.ir, edited.slices)
    assert written == [generated / "ir" / "pricer.json", generated / "ir.v1.json"]
    assert (generated / "ir.v1.json").read_bytes() == canonical_json(ir_dump(edited.ir))


@pytest.mark.parametrize("how", ["in_place", "renamed"])
def test_a_slice_rewritten_to_the_same_size_and_mtime_is_read_again(tmp_path, arch, how):
    """write.read_known trusts the bytes it read before only while the file's inode, size,
    modification and change times are as they were: a rewrite to other bytes of the same size
    with its mtime set back (in place, or by a rename over it) is read, found changed and
    written again."""
    import time

    project = _project(tmp_path, arch)
    generated = project / "generated"
    result = compile_directory(project)
    write_ir(generated, result.ir, result.slices)
    assert write_ir(generated, result.ir, result.slices) == []  # read_known has read every slice
    pricer = generated / "ir" / "pricer.json"
    expected = pricer.read_bytes()
    before = os.stat(pricer)
    time.sleep(0.05)  # past the file system's clock tick: the change time moves
    other = expected.replace(b'"pricer"', b'"PRICER"')
    assert len(other) == len(expected) and other != expected
    if how == "in_place":
        pricer.write_bytes(other)
    else:
        spare = pricer.with_name("spare")
        spare.write_bytes(other)
        os.replace(spare, pricer)
    os.utime(pricer, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(pricer).st_size == before.st_size
    assert write_ir(generated, result.ir, result.slices) == [pricer]
    assert pricer.read_bytes() == expected
