"""ir.v1.json's parts other than its components (bindings, metadata's capacity, schemas...)
are taken from the file the last run wrote when their data is unchanged (ir/write.py,
_encode_ir): the bytes must always be canonical_json of the whole IR, whatever the index says.
"""

from __future__ import annotations

import hashlib
import json

from conftest import EXAMPLE, component, dump

from autocoder.canonical import canonical_json
from autocoder.compile import compile_directory
from autocoder.ir import write
from autocoder.ir.models import dump as ir_dump
from autocoder.ir.write import WRITTEN_INDEX, write_ir


def _project(tmp_path, arch):
    (tmp_path / "architecture.yaml").write_bytes(dump(arch))
    (tmp_path / "deployment.yaml").write_bytes((EXAMPLE / "deployment.yaml").read_bytes())
    return tmp_path


def _sources(result) -> list:
    """write._encode_ir's slices: (sha256, bytes) of each component's, in the IR's order."""
    found = [canonical_json(ir_dump(result.slices[c.name])) for c in result.ir.components]
    return [(hashlib.sha256(raw).hexdigest(), raw) for raw in found]


def _reused(generated) -> dict:
    index = json.loads((generated / WRITTEN_INDEX).read_bytes())
    return write._previous_parts(generated / "ir.v1.json", index["ir"])


def test_unchanged_parts_are_reused_and_the_file_is_the_plain_encoding(tmp_path, arch):
    project = _project(tmp_path, arch)
    generated = project / "generated"
    write_ir(generated, (first := compile_directory(project)).ir, first.slices)
    parts = _reused(generated)
    assert '["bindings"]' in parts and '["metadata", "capacity"]' in parts
    for edit in (
        lambda a: component(a, "pricer").update(description='a "quoted"\n  }\n  ], é\t{'),
        lambda a: a["bindings"][-1].update(condition="total > 500"),  # a part changes: bindings
        lambda a: component(a, "pricer").update(description="back"),
    ):
        edit(arch)
        (project / "architecture.yaml").write_bytes(dump(arch))
        result = compile_directory(project)
        assert result.ir is not None, result.diagnostics
        write_ir(generated, result.ir, result.slices)
        plain = canonical_json(ir_dump(result.ir))
        assert (generated / "ir.v1.json").read_bytes() == plain
        # what the memo gives is what encoding afresh gives
        slice_bytes = _sources(result)
        assert write._encode_ir(result.ir, slice_bytes, _reused(generated))[0] == plain
        assert write._encode_ir(result.ir, slice_bytes, {})[0] == plain


def test_an_index_that_does_not_describe_the_file_is_not_used(tmp_path, arch):
    project = _project(tmp_path, arch)
    generated = project / "generated"
    result = compile_directory(project)
    write_ir(generated, result.ir, result.slices)
    index_path = generated / WRITTEN_INDEX
    good = json.loads(index_path.read_bytes())
    parts = good["ir"]["parts"]
    plain = canonical_json(ir_dump(result.ir))
    swapped = {**parts, '["bindings"]': parts['["metadata", "capacity"]']}
    shifted = {k: [v[0], v[1] + 1, v[2]] for k, v in parts.items()}
    for bad in (
        {**good, "ir": {**good["ir"], "parts": swapped}},
        {**good, "ir": {**good["ir"], "sha256": "0" * 64}},
        {**good, "ir": {**good["ir"], "parts": shifted}},
        {**good, "ir": {**good["ir"], "parts": {**parts, '["system"]': ["x", "y", 1]}}},
        {**good, "ir": "nonsense"},
    ):
        assert write._previous_parts(generated / "ir.v1.json", bad["ir"]) == {}
        (generated / "ir.v1.json").write_bytes(b"{}\n")  # a rewrite, after the index is read
        index_path.write_text(json.dumps(bad))
        write_ir(generated, result.ir, result.slices)
        assert (generated / "ir.v1.json").read_bytes() == plain
    # a file changed by hand: its recorded sha256 no longer matches, nothing of it is reused
    (generated / "ir.v1.json").write_bytes(plain.replace(b'"bindings": [', b'"bindings":  ['))
    assert _reused(generated) == {}
    write_ir(generated, result.ir, result.slices)
    assert (generated / "ir.v1.json").read_bytes() == plain


def test_the_same_data_at_another_depth_is_not_taken(tmp_path):
    """The same list at nesting level 2 is not level 1's text (its lines are indented deeper)."""
    text = '{\n  "a": {\n    "b": [\n      1\n    ]\n  },\n  "c": [\n    1\n  ]\n}\n'
    assert json.loads(text) == {"a": {"b": [1]}, "c": [1]}
    path = tmp_path / "ir.v1.json"
    path.write_text(text)
    sha = write.hashlib.sha256(text.encode()).hexdigest()
    digest = write.content_hash([1])
    deep = text.index("[\n      1")
    deep_part = [digest, deep, text.index("]", deep) + 1]
    flat = text.index("[\n    1\n  ]")
    flat_part = [digest, flat, text.index("]", flat) + 1]
    assert write._previous_parts(path, {"sha256": sha, "parts": {'["c"]': flat_part}}) == {
        '["c"]': (digest, "[\n    1\n  ]")
    }
    assert write._previous_parts(path, {"sha256": sha, "parts": {'["c"]': deep_part}}) == {}


def test_the_rest_of_the_ir_is_taken_from_the_last_plan_only_for_the_same_json(tmp_path, arch):
    """write._REST: the data and digests of the IR's fields but its components, by pydantic's
    JSON of a group of fields (metadata's warnings and capacity; the others). Poisoned, its
    entries show where that JSON is the same (they are used); after an edit of the bindings,
    or of a budget (the capacity estimates change), the group whose JSON changed is read
    afresh, and the other is still used."""
    project = _project(tmp_path, arch)
    generated = project / "generated"
    result = compile_directory(project)
    write_ir(generated, result.ir, result.slices)
    slice_bytes = _sources(result)
    plain = canonical_json(ir_dump(result.ir))
    assert write._encode_ir(result.ir, slice_bytes, {})[0] == plain
    assert len(write._REST) == 2

    def poison() -> None:
        for text, (data, _) in list(write._REST.items()):
            wrong = json.loads(json.dumps(data))
            if "capacity" in wrong:
                wrong["capacity"] = ["POISON-METADATA"]
            else:
                wrong["topology"] = ["POISON-REST"]
            write._REST[text] = (wrong, {})

    poison()
    found = write._encode_ir(result.ir, slice_bytes, {})[0]
    assert b"POISON-METADATA" in found and b"POISON-REST" in found
    for edit, used in (
        (lambda a: a["bindings"][-1].update(condition="total > 500"), b"POISON-METADATA"),
        (lambda a: component(a, "pricer").update(budget={"p95_ms": 1.5}), b"POISON-REST"),
    ):
        write._encode_ir(result.ir, slice_bytes, {})  # _REST: the last IR's, unpoisoned
        edit(arch)
        (project / "architecture.yaml").write_bytes(dump(arch))
        edited = compile_directory(project)
        assert edited.ir is not None, edited.diagnostics
        assert edited.ir.metadata.capacity != result.ir.metadata.capacity or used != b"POISON-REST"
        slice_bytes = _sources(edited)
        poison()
        found = write._encode_ir(edited.ir, slice_bytes, {})[0]
        assert used in found and found.count(b"POISON") == 1
        write._REST.clear()
        assert write._encode_ir(edited.ir, slice_bytes, {})[0] == canonical_json(ir_dump(edited.ir))
        result = edited
