"""Parsing architecture.yaml item by item (autocoder/blueprint/splice.py) gives what parse_yaml
gives: the same data, the same positions for every path (values and keys), the same errors.

Each text is parsed whole and spliced, with an empty memo, with the memo its own parse left,
and with the memo of the base text (whose items it may reuse); then the whole compile (its
diagnostics and IR bytes) with and without the compile memo (tests/test_compile_memo.py's
comparison). The texts: the examples, a synthetic system, and edits of it meant to break
the splitting (comments and blank lines between items, flow lists, quoted and block scalars
that reach past an item's lines, CRLF, a byte-order mark, anchors, document markers, items at
other columns, syntax errors, duplicated keys, tabs, moved and renamed components), plus
seeded random line edits.
"""

from __future__ import annotations

import random

import pytest
import yaml
from test_compile_memo import BLUEPRINTS, assert_same_with_memo, filled
from yaml.nodes import ScalarNode

from autocoder.analysis.memo import ComponentMemo
from autocoder.blueprint import splice as splice_module
from autocoder.blueprint.source import SourceDoc, parse_yaml
from autocoder.blueprint.splice import ParseMemo, item_spans, parse_architecture, span
from autocoder.diagnostics import BlueprintError
from autocoder.synthetic import synthetic_architecture, synthetic_deployment

NAME = "architecture.yaml"
_SPLIT = splice_module._split


def _base() -> str:
    return yaml.safe_dump(synthetic_architecture(9), sort_keys=False)


DEPLOY = yaml.safe_dump(synthetic_deployment(), sort_keys=False).encode()


def _variants() -> dict[str, str]:
    text = _base()
    first = "- name: trans_0\n"
    assert first in text and "\nbindings:\n- from:" in text
    indented = "".join(
        ("  " + line if line.startswith(("-", " ")) else line) for line in text.splitlines(keepends=True)
    )
    return {
        "base": text,
        "indented_lists": indented,
        "comments_between": text.replace(first, "# about trans_0\n\n  # more\n" + first, 1),
        "comment_at_column_0_inside": text.replace("  kind: transformer\n", "# x\n  kind: transformer\n", 1),
        "trailing_comment_before_bindings": text.replace(
            "\nbindings:", "\n# end of components\n\nbindings:", 1
        ),
        "flow_list": text.replace(first, "- {name: flow_0, kind: sink, inputs: {in: Reading}}\n" + first, 1),
        "flow_over_lines": text.replace(
            first, "- {name: flow_0,\n  kind: sink, inputs: {in: Reading}}\n" + first, 1
        ),
        "flow_list_broken": text.replace(first, "- [a,\n" + first, 1),
        "quote_across_items": text.replace(
            first, '- name: "q\n' + first.rstrip("\n") + '"\n  kind: sink\n', 1
        ),
        "block_scalar_keep": text.replace(first, first + "  description: |+\n    kept\n\n\n", 1),
        "crlf": text.replace("\n", "\r\n"),
        "lone_cr": text.replace(first, first.rstrip("\n") + "\r", 1),
        "bom": "\ufeff" + text,
        "bom_inside": text.replace(first, "\ufeff" + first, 1),
        "anchor": text.replace("kind: transformer", "kind: &k transformer", 1),
        "alias_without_anchor": text.replace("kind: filter", "kind: *k", 1),
        "document_marker": "---\n" + text,
        "second_document": text + "---\nx: 1\n",
        "dash_alone": text.replace(first, "-\n  name: trans_0\n", 1),
        "syntax_error_in_item": text.replace("  kind: transformer\n", "  kind: [transformer\n", 1),
        "duplicate_key_in_item": text.replace(
            "  kind: transformer\n", "  kind: transformer\n  kind: sink\n", 1
        ),
        "duplicate_components": text + "components:\n- name: x\n  kind: sink\n",
        "tab": text.replace("  kind: transformer\n", "  kind:\ttransformer\n\t\n", 1),
        "item_deeper": text.replace(first, "  - name: x\n    kind: sink\n" + first, 1),
        "key_at_item_column": text.replace(first, "oops: 1\n" + first, 1),
        "moved": _moved(text),
        "renamed": text.replace("name: trans_0\n", "name: trans_zero\n").replace("trans_0.", "trans_zero."),
        "no_final_newline": text.rstrip("\n"),
        "empty_components": text.replace("components:\n", "components: []\nunused:\n", 1),
        "nested_components_key": text.replace("system:\n", "system:\n  components:\n  - 1\n", 1),
        "number_out_of_range": text.replace("  kind: transformer\n", "  kind: 99999999999999999999999\n", 1),
    }


def _moved(text: str) -> str:
    """trans_0's item moved to the end of the components."""
    start = text.index("- name: trans_0\n")
    end = text.index("\n- ", start) + 1
    item = text[start:end]
    rest = text[:start] + text[end:]
    at = rest.index("\nbindings:") + 1
    return rest[:at] + item + rest[at:]


def _marks(doc: SourceDoc, key: bool) -> dict:
    """Every path's node position (start line, column, character; end for scalars and lists)."""
    nodes = doc.keys if key else doc.values
    found = {}
    for path in nodes:
        node = nodes[path]
        start = (node.start_mark.line, node.start_mark.column, node.start_mark.index)
        end = (node.end_mark.line, node.end_mark.column, node.end_mark.index)
        found[path] = (start, end if isinstance(node, ScalarNode) or len(path) < 2 else None)
    return found


def _parsed(raw: bytes, memo: ParseMemo | None) -> tuple:
    try:
        doc = parse_yaml(raw, NAME) if memo is None else parse_architecture(raw, NAME, memo)
    except BlueprintError as exc:
        return ("error", [(d, d.format()) for d in exc.diagnostics])
    marked = {path: (doc.mark(path), doc.mark(path, key=True)) for path in doc.values}
    # the compile memo's keys: each item's span (splice.item_spans, from a spliced document's
    # items without moving their nodes) is span()'s (an end differs spliced and whole: the
    # comparison above leaves out collections' ends)
    listing = doc.data.get("components") if isinstance(doc.data, dict) else None
    if isinstance(listing, list):
        spans = [span(doc.values, ("components", i)) for i in range(len(listing))]
        assert item_spans(doc.values, "components", len(listing)) == [
            (s.start, s.line, s.column, s.end, s.end_line) for s in spans if s is not None
        ]
    return (doc.data, _marks(doc, False), _marks(doc, True), marked, doc.text)


def _check(text: str, base: ParseMemo) -> None:
    """`text` parsed whole, and spliced: with an empty memo, its own (the second time the text
    it last spliced is `text` itself), the base text's items, and the base text's `last` (the
    incremental path, splice._edited, where `text` differs inside items only)."""
    raw = text.encode()
    expected = _parsed(raw, None)
    own = ParseMemo()
    for memo in (own, own, ParseMemo(items=dict(base.items), skeleton=base.skeleton), _copy(base)):
        assert _parsed(raw, memo) == expected


def _copy(memo: ParseMemo) -> ParseMemo:
    return ParseMemo(dict(memo.items), memo.skeleton, dict(memo.validated), last=memo.last)


@pytest.fixture(scope="module")
def base_memo() -> ParseMemo:
    memo = ParseMemo()
    parse_architecture(_base().encode(), NAME, memo)
    assert memo.parsed > 10 and memo.hits == 0
    return memo


@pytest.mark.parametrize("variant", sorted(_variants()))
def test_spliced_parse_is_the_whole_parse(variant: str, base_memo: ParseMemo) -> None:
    _check(_variants()[variant], base_memo)


def test_the_splice_is_used_and_reuses_unchanged_items(base_memo: ParseMemo) -> None:
    """Not a path never taken: an edit inside one item parses that item alone."""
    memo = ParseMemo(items=dict(base_memo.items), skeleton=base_memo.skeleton)
    edited = _base().replace("value * 1 + 0.5", "0.5 + value * 1", 1)
    doc = parse_architecture(edited.encode(), NAME, memo)
    assert doc.items is not None and memo.parsed == 1 and memo.hits == len(base_memo.items) - 1
    for name in ("crlf", "indented_lists", "comments_between", "moved", "bom"):
        assert parse_architecture(_variants()[name].encode(), NAME, ParseMemo()).items is not None, name
    for name in ("anchor", "document_marker", "lone_cr", "bom_inside", "syntax_error_in_item"):
        with_memo = ParseMemo()
        try:
            assert parse_architecture(_variants()[name].encode(), NAME, with_memo).items is None, name
        except BlueprintError:
            pass


@pytest.mark.parametrize("directory", BLUEPRINTS, ids=lambda p: p.name)
def test_examples(directory, base_memo: ParseMemo) -> None:
    _check((directory / NAME).read_text(), base_memo)


def test_random_line_edits(base_memo: ParseMemo) -> None:
    """Seeded: lines duplicated, dropped, re-indented, cut or given a stray character."""
    lines = _base().splitlines(keepends=True)
    rng = random.Random(13)
    for _ in range(60):
        edited = list(lines)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(edited))
            line = edited[at]
            edited[at : at + 1] = rng.choice(
                [
                    [line, line],
                    [],
                    [" " + line],
                    [line[1:] or line],
                    [line[: len(line) // 2] + "\n", line[len(line) // 2 :]],
                    [line.rstrip("\n") + rng.choice([' "', " [", " #", ":", " - x", " '"]) + "\n"],
                    ["- " + line],
                ]
            )
        _check("".join(edited), base_memo)


def test_an_edit_inside_items_is_spliced_from_the_last_text_without_splitting_it_again(
    base_memo: ParseMemo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """splice._edited: an edit inside one item, or in several items of one list, that keeps
    each item's line count is spliced from the last text (the whole file is not split again:
    _split is not called) and parses to what parse_yaml gives; an edit that adds a line, or
    outside the items, is split as usual."""
    from autocoder.blueprint import splice

    text = _base()
    one = text.replace("value * 1 + 0.5", "0.5 + value * 1", 1)
    several = one.replace("score > 0", "score >= 0", 1).replace("value * 2 + 0.5", "2 * value + 0.5", 1)
    binding = text.replace("  to: filte_0.in\n", "  to: filte_1.in\n", 1)
    monkeypatch.setattr(splice, "_split", lambda _text: pytest.fail("split again"))
    for edited in (text, one, several, binding):
        memo = _copy(base_memo)
        doc = parse_architecture(edited.encode(), NAME, memo)
        assert doc.items is not None and memo.last is not None and memo.last.text == edited
        assert memo.parsed == (0 if edited == text else 1 if edited in (one, binding) else 3)
        assert _parsed(edited.encode(), _copy(base_memo)) == _parsed(edited.encode(), None)
    monkeypatch.undo()
    calls: list[str] = []

    def counted(split: str) -> list:
        calls.append(split)
        return _SPLIT(split)

    for edited in (
        text.replace("  kind: transformer\n", "  # a note\n  kind: transformer\n", 1),
        text.replace("system:\n", "system:  # the system\n", 1),
    ):
        _check(edited, base_memo)
        calls.clear()
        monkeypatch.setattr(splice, "_split", counted)
        parse_architecture(edited.encode(), NAME, _copy(base_memo))
        assert calls == [edited]
        monkeypatch.undo()


def test_random_character_edits_inside_lines(base_memo: ParseMemo) -> None:
    """Seeded: characters replaced, inserted or dropped within lines (line counts kept, so
    the incremental splice is tried), YAML's indicators among them, in one item or several."""
    text = _base()
    rng = random.Random(29)
    alphabet = "ab -:#&*!|>'\"[]{},?%@`\t\r\ufeff0"
    for _ in range(150):
        edited = list(text)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(edited))
            if edited[at] == "\n":
                continue
            edited[at : at + 1] = rng.choice([[rng.choice(alphabet)], [], [edited[at], rng.choice(alphabet)]])
        _check("".join(edited), base_memo)


@pytest.mark.parametrize(
    "variant", ["base", "crlf", "moved", "renamed", "comments_between", "indented_lists"]
)
def test_compile_with_spliced_parse_is_the_plain_compile(variant: str) -> None:
    """Diagnostics and IR bytes, with the compile memo empty, own, and of the base text."""
    base = filled(_base().encode(), DEPLOY)
    assert_same_with_memo(_variants()[variant].encode(), DEPLOY, base)
    memo = ComponentMemo(parse=ParseMemo(items=dict(base.parse.items), validated=dict(base.parse.validated)))
    assert_same_with_memo(_variants()[variant].encode(), DEPLOY, memo, own=False)
