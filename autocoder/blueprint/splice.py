"""Parse architecture.yaml reusing the items of its long lists that did not change.

After a one-component edit, parsing the whole file again (libyaml composing ~40,000 nodes, our
builder recording a position for each) was the largest part of `check` at 500 components.
Here the text of each item of the top-level `components` and `bindings` lists is parsed on its
own and kept by its text (ParseMemo): the next compile parses only the items whose text is new
and a skeleton of the file, where each item is replaced by a one-line placeholder padded with
empty lines (same line numbers; the placeholders are the only nodes of the lists). The result
is the SourceDoc parse_yaml gives: the same data, the same nodes' positions (each item's moved
by the line and character its text starts at), the same `values` and `keys` paths.

Why an item parsed alone is the item in the file: an item of a block list at column n is the
lines from its dash to the next line at column <= n that is not blank or a comment; YAML reads
those lines the same whatever came before them (a block context at a line start; no anchor,
alias target, directive or document marker can be involved: a file with any of them is parsed
whole), and resolves scalars by their text alone. A line that ends a quoted or flow scalar
below the item's column would leave the item's own text unterminated: it then does not parse
alone and the whole file is parsed. The skeleton must parse into lists holding exactly the
placeholders at their lines, and each item into one block-list item at its column, else too.
Every problem, in any part, falls back to parsing the whole file, which reports it as before:
this path only ever produces a clean parse. tests/test_splice.py compares it with parse_yaml.

Splitting the file into items and building the skeleton is itself a scan of every line (~5 ms
at 500 components); the memo keeps the last text as it was split (`Last`), and a text that
differs from it only inside items of one list, each keeping its line count (an edit of a
component's logic or description), is spliced from it (_edited): only the changed items are
split again and checked, every other item keeps its parse, moved by the length difference.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError
from yaml.error import Mark as YamlMark
from yaml.nodes import Node, ScalarNode, SequenceNode

from autocoder.blueprint.source import MAX_NODES, Item, Path_, SourceDoc, decode, parse_counted, parse_item

SECTIONS = ("components", "bindings")  # the top-level lists parsed item by item
_SECTION = re.compile(r"^(components|bindings):[ ]*(?:#[^\r\n]*)?\r?$", re.MULTILINE)
# An anchor (`&name`) is preceded by white space, a flow indicator or the start of a line;
# this also matches some text that is no anchor (`a &b` in a string): that file is parsed whole.
ANCHOR = re.compile(r"(?:^|[\s\[\{,])&\S", re.MULTILINE)
_DIRECTIVE = re.compile(r"^(?:%|---|\.\.\.)", re.MULTILINE)


@dataclass
class ParseMemo:
    """Items parsed on their own, by their text: those the last parse used or made."""

    items: dict[str, Item] = field(default_factory=dict)
    # the last skeleton parsed (its text and file name) and its parse: an edit inside an item
    # that keeps its line count leaves the skeleton as it was
    skeleton: tuple[tuple[str, str], SourceDoc, int] | None = None
    validated: dict[tuple[str, str], Any] = field(default_factory=dict)  # (list, item text): model
    hits: int = 0
    parsed: int = 0
    last: Last | None = None  # the last text spliced, as it was split and parsed (_edited)


@dataclass(frozen=True)
class Last:
    """A spliced text and what _spliced made of it: all a function of the text (and the file
    name), kept whole so that the next text, when it differs inside some items only, is
    spliced from it (_edited) without splitting and scanning the whole file again."""

    text: str
    name: str
    bom: int
    sections: list[_Section]
    deltas: list[tuple[int, int]]
    skeleton: tuple[tuple[str, str], SourceDoc, int]  # ParseMemo.skeleton's
    parts: dict[str, list[tuple[Item, int, int]]]
    count: int  # the document's nodes
    texts: dict[str, list[str]]  # per list, its items' texts


@dataclass(frozen=True)
class _Section:
    key: str
    indent: int  # the items' column (0-based)
    begin: int  # character offset of the first item's first line
    end: int  # character offset after the last item's last line
    items: list[tuple[int, int, int]]  # per item: start, end (character offsets), first line (0-based)


def parse_architecture(raw: bytes, name: str, memo: ParseMemo) -> SourceDoc:
    """parse_yaml(raw, name), from `memo`'s items where the text is theirs (module docstring);
    `memo` then holds this text's items. BlueprintError exactly as parse_yaml."""
    text = decode(raw, name)
    spliced = _spliced(text, name, memo)
    if spliced is not None:
        return spliced
    return parse_counted(text, name)[0]


def _spliced(text: str, name: str, memo: ParseMemo) -> SourceDoc | None:
    memo.hits = memo.parsed = 0
    edited = _edited(text, name, memo)
    if edited is not None:
        return edited
    memo.hits = memo.parsed = 0
    sections = _split(text)
    if not sections:
        return None
    bom = 1 if text.startswith("\ufeff") else 0  # libyaml's character offsets leave it out
    skeleton, deltas = _skeleton(text, sections, bom)
    parsed = memo.skeleton if memo.skeleton is not None and memo.skeleton[0] == (skeleton, name) else None
    if parsed is None:
        try:
            parsed = ((skeleton, name), *parse_counted(skeleton, name))
        except Exception:  # noqa: BLE001 - the whole file is parsed, and reports it
            return None
    memo.skeleton = parsed
    _, doc, count = parsed
    used: dict[str, Item] = {}
    parts: dict[str, list[tuple[Item, int, int]]] = {}
    data = dict(doc.data)
    for section in sections:
        if not _placeholders(doc, section):
            return None
        items = []
        for start, end, line in section.items:
            chunk = text[start:end]
            item = used.get(chunk) or memo.items.get(chunk)
            if item is None:
                item = parse_item(chunk, name, section.indent)
                if item is None:
                    return None
                memo.parsed += 1
            else:
                memo.hits += 1
            used[chunk] = item
            items.append((item, line, start - bom))
            count += item.nodes - 1  # its placeholder was one node
        if count > MAX_NODES:
            return None
        parts[section.key] = items
        data[section.key] = [item.data for item, _, _ in items]
    memo.items = used
    memo.validated = {key: made for key, made in memo.validated.items() if key[1] in used}
    texts = {section.key: [text[a:b] for a, b, _ in section.items] for section in sections}
    memo.last = Last(text, name, bom, sections, deltas, parsed, parts, count, texts)
    return _document(memo.last, data, {key: list(chunks) for key, chunks in texts.items()})


def _document(last: Last, data: dict[str, Any], texts: dict[str, list[str]]) -> SourceDoc:
    doc = last.skeleton[1]
    return SourceDoc(
        last.name,
        data,
        _Spliced(doc.values, last.parts, last.deltas, is_key=False),
        _Spliced(doc.keys, last.parts, last.deltas, is_key=True),
        last.text,
        texts,
    )


def _edited(text: str, name: str, memo: ParseMemo) -> SourceDoc | None:
    """_spliced's document for `text` from memo.last when `text` differs from its text only
    inside a run of items of one list, each keeping its line count, and the items there split
    as before (then the skeleton is the same text and every other item is where it was, its
    offsets moved by the length difference): the changed items only are split, checked
    (_clean) and parsed. None when any of that does not hold (the caller splices `text` as
    usual). tests/test_splice.py compares every text with the whole parse through this path."""
    last = memo.last
    if last is None or last.name != name:
        return None
    old = last.text
    same = _common_prefix(old, text)
    changed_end = len(old) - _common_suffix(old, text, min(len(old), len(text)) - same)
    grow = len(text) - len(old)
    sections = list(last.sections)
    parts = dict(last.parts)
    texts = {key: list(chunks) for key, chunks in last.texts.items()}
    deltas = last.deltas
    count = last.count
    if text != old:
        found = [i for i, s in enumerate(sections) if s.begin <= same and changed_end <= s.end]
        if not found:
            return None
        index = found[0]
        section = sections[index]
        first = bisect.bisect_right(section.items, same, key=_first) - 1
        if first < 0:
            return None
        stop = first
        while section.items[stop][1] < changed_end:
            stop += 1
        window = _resplit(text, old, section, first, stop, grow)
        if window is None:
            return None
        items = parts[section.key]
        made = []
        for (start, end, line), (old_item, _, _) in zip(window, items[first : stop + 1], strict=True):
            chunk = text[start:end]
            item = memo.items.get(chunk)
            if item is None:
                item = parse_item(chunk, name, section.indent)
                if item is None:
                    return None
                memo.parsed += 1
            count += item.nodes - old_item.nodes
            made.append((item, line, start - last.bom))
        if count > MAX_NODES:
            return None
        moved = [(item, line, offset + grow) for item, line, offset in items[stop + 1 :]]
        parts[section.key] = [*items[:first], *made, *moved]
        shifted = [(a + grow, b + grow, line) for a, b, line in section.items[stop + 1 :]]
        sections[index] = _Section(
            section.key,
            section.indent,
            section.begin,
            section.end + grow,
            [*section.items[:first], *window, *shifted],
        )
        for later in range(index + 1, len(sections)):  # sections are in the text's order (_split)
            after = sections[later]
            parts[after.key] = [(item, line, offset + grow) for item, line, offset in parts[after.key]]
            sections[later] = _Section(
                after.key,
                after.indent,
                after.begin + grow,
                after.end + grow,
                [(a + grow, b + grow, line) for a, b, line in after.items],
            )
        texts[section.key][first : stop + 1] = [text[start:end] for start, end, _ in window]
        deltas = _deltas(last.deltas, last.sections, sections)
    memo.hits = sum(len(s.items) for s in sections) - memo.parsed
    used: dict[str, Item] = {}
    for key, chunks in texts.items():
        used.update(zip(chunks, [item for item, _, _ in parts[key]], strict=True))
    memo.items = used
    memo.validated = {key: made for key, made in memo.validated.items() if key[1] in used}
    memo.skeleton = last.skeleton
    memo.last = Last(text, name, last.bom, sections, deltas, last.skeleton, parts, count, texts)
    data = dict(last.skeleton[1].data)
    for section in sections:
        data[section.key] = [item.data for item, _, _ in parts[section.key]]
    return _document(memo.last, data, {key: list(chunks) for key, chunks in texts.items()})


def _first(item: tuple[int, int, int]) -> int:
    return item[0]


def _common_prefix(a: str, b: str) -> int:
    """How many characters `a` and `b` start with in common (halving: a few comparisons of
    slices, not a loop over characters)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        mid = (low + high + 1) // 2
        if a[low:mid] == b[low:mid]:
            low = mid
        else:
            high = mid - 1
    return low


def _common_suffix(a: str, b: str, most: int) -> int:
    """How many characters, at most `most`, `a` and `b` end with in common."""
    low, high = 0, most
    while low < high:
        mid = (low + high + 1) // 2
        if a[len(a) - mid : len(a) - low] == b[len(b) - mid : len(b) - low]:
            low = mid
        else:
            high = mid - 1
    return low


def _resplit(
    text: str, old: str, section: _Section, first: int, stop: int, grow: int
) -> list[tuple[int, int, int]] | None:
    """Items first..stop of `section` (split in `old`) split again in `text`, where they end
    `grow` characters later: (start, end, line) of each, when they are as many (_items' rule:
    each starts with a dash at the list's column, no other line is at or left of it), each
    keeps its line count and none holds what makes _split parse the file whole; else None."""
    begin, end = section.items[first][0], section.items[stop][1] + grow
    if end <= begin or (end < len(text) and text[end - 1] != "\n"):
        return None  # the next item's line would now start inside the last one's
    starts = []
    for match in _significant(section.indent).finditer(text, begin, end):
        rest = text[match.end(1) : match.end(1) + 2]
        if len(match.group(1)) != section.indent or not (rest in ("- ", "-\n", "-\r") or rest == "-"):
            return None
        starts.append(match.start())
    if len(starts) != stop - first + 1 or starts[0] != begin:
        return None
    window = []
    for start, finish, (old_start, old_end, line) in zip(
        starts, [*starts[1:], end], section.items[first : stop + 1], strict=True
    ):
        chunk = text[start:finish]
        if chunk.count("\n") != old.count("\n", old_start, old_end) or not _clean(chunk):
            return None
        window.append((start, finish, line))
    return window


def _clean(chunk: str) -> bool:
    """Whether whole lines `chunk`, inside a file that _split found clean, leave it clean: no
    anchor, directive or document marker, odd line break or byte-order mark (_split)."""
    return not (
        has_anchor(chunk)
        or _DIRECTIVE.search(chunk)
        or chunk.count("\r") != chunk.count("\r\n")
        or any(c in chunk for c in "\x85\u2028\u2029\ufeff")
    )


def _deltas(
    deltas: list[tuple[int, int]], before: list[_Section], after: list[_Section]
) -> list[tuple[int, int]]:
    """_skeleton's deltas for the items `after` (the same skeleton: each item has the line
    count it had `before`): where each placeholder ends is unchanged; how much longer the
    items up to it are than their placeholders, by how much longer they got."""
    made = []
    extra = 0
    at = 0
    for old, new in zip(
        sorted(before, key=lambda s: s.begin), sorted(after, key=lambda s: s.begin), strict=True
    ):
        for (a0, b0, _), (a1, b1, _) in zip(old.items, new.items, strict=True):
            extra += (b1 - a1) - (b0 - a0)
            end, grown = deltas[at]
            made.append((end, grown + extra))
            at += 1
    return made


def validated_items(doc: SourceDoc, memo: ParseMemo) -> dict[str, list[Any]] | None:
    """Each spliced list's items validated as their models (a component, a binding), each item
    once per text (kept in `memo`); None when the document was parsed whole or an item does not
    validate alone (then the whole document is validated, and reports it). Validating an item
    reads nothing but its data, so the model validated from these instances is the one the
    whole data gives (blueprint.validate.validate_model)."""
    if doc.items is None:
        return None
    made: dict[str, list[Any]] = {}
    for section, texts in doc.items.items():
        adapter = _adapter(section)
        instances = []
        for text, data in zip(texts, doc.data[section], strict=True):
            instance = memo.validated.get((section, text))
            if instance is None:
                try:
                    instance = adapter.validate_python(data)
                except ValidationError:
                    return None
                memo.validated[(section, text)] = instance
            instances.append(instance)
        made[section] = instances
    return made


@functools.cache
def _adapter(section: str) -> TypeAdapter[Any]:
    from autocoder.blueprint.models import Binding, Component

    return TypeAdapter(Component if section == "components" else Binding)


def _split(text: str) -> list[_Section]:
    """The sections to parse item by item; none when the file has anything that could make an
    item's text mean something else in the file than alone (module docstring)."""
    if has_anchor(text) or _DIRECTIVE.search(text) or _odd(text):
        return []
    sections = []
    seen = set()
    for match in _SECTION.finditer(text):
        if match.group(1) not in seen:
            seen.add(match.group(1))
            section = _items(match.group(1), text, match.end() + 1)
            if section is not None:
                sections.append(section)
    return sections


def has_anchor(text: str) -> bool:
    """Whether `text` may hold a YAML anchor (ANCHOR; the search alone costs ~5 ms at 500
    components, so a text without "&" is not searched)."""
    return "&" in text and ANCHOR.search(text) is not None


def _odd(text: str) -> bool:
    """Whether `text` has a YAML line break other than \\n and \\r\\n, or a byte-order mark
    after its start."""
    return (
        text.count("\r") != text.count("\r\n")
        or any(c in text for c in "\x85\u2028\u2029")
        or ("\ufeff" in text[1:])
    )


def _items(key: str, text: str, begin: int) -> _Section | None:
    """The items of the block list whose lines start at offset `begin` (after a `key:` line)."""
    first = _CONTENT.search(text, begin)
    if first is None:
        return None
    indent = len(first.group(1))
    starts = []
    end = len(text)
    significant = _significant(indent)
    for match in significant.finditer(text, first.start()):
        rest = text[match.end(1) : match.end(1) + 2]
        if len(match.group(1)) == indent and (rest in ("- ", "-\n", "-\r") or rest == "-"):
            starts.append(match.start())
        else:
            end = match.start()
            break
    if not starts or starts[0] != first.start():
        return None
    ends = [*starts[1:], end]
    items = []
    line = text.count("\n", 0, starts[0])
    for start, stop in zip(starts, ends, strict=True):
        items.append((start, stop, line))
        line += text.count("\n", start, stop)
    return _Section(key, indent, starts[0], end, items)


# the first line (from a line start) with a character that is neither a space nor a comment's
_CONTENT = re.compile(r"^( *)[^ \r\n#]", re.MULTILINE)


def _significant(indent: int) -> re.Pattern[str]:
    """A line at column <= indent with a character that is neither a space nor a comment's."""
    return re.compile(r"^( {0,%d})[^ \r\n#]" % indent, re.MULTILINE)  # noqa: UP031 - a regex


def _skeleton(text: str, sections: list[_Section], bom: int) -> tuple[str, list[tuple[int, int]]]:
    """The text with each item replaced by `- x` at its column and as many line breaks; and,
    per item, where its placeholder ends in the skeleton and how many characters longer the
    item's text is (to move the skeleton's positions after it to the file's)."""
    pieces = []
    deltas = []
    at = 0
    grown = 0
    for section in sorted(sections, key=lambda s: s.begin):
        for start, end, _ in section.items:
            pieces.append(text[at:start])
            placeholder = " " * section.indent + "- x" + "\n" * text.count("\n", start, end)
            pieces.append(placeholder)
            after = start - grown + len(placeholder)  # where the placeholder ends in the skeleton
            grown += (end - start) - len(placeholder)
            deltas.append((after - bom, grown))  # in libyaml's offsets (a byte-order mark left out)
            at = end
    pieces.append(text[at:])
    return "".join(pieces), deltas


def _placeholders(doc: SourceDoc, section: _Section) -> bool:
    """Whether the skeleton holds `section`'s list at the top level, as exactly its placeholders."""
    listing = doc.values.get((section.key,))
    if not isinstance(listing, SequenceNode) or len(listing.value) != len(section.items):
        return False
    for node, (_, _, line) in zip(listing.value, section.items, strict=True):
        if not isinstance(node, ScalarNode) or node.value != "x" or node.start_mark.line != line:
            return False
        if node.start_mark.column != section.indent + 2:
            return False
    return isinstance(doc.data.get(section.key), list)


class _Spliced(Mapping[Path_, Node]):
    """The nodes of the file by path: an item's from its own parse, moved to where its text is;
    the rest from the skeleton's, their character offsets moved past the longer items."""

    def __init__(
        self,
        skeleton: Mapping[Path_, Node],
        parts: dict[str, list[tuple[Item, int, int]]],
        deltas: list[tuple[int, int]],
        *,
        is_key: bool,
    ) -> None:
        self._skeleton = skeleton
        self._parts = parts
        self._deltas = deltas
        self._is_key = is_key

    def _item(self, path: Path_) -> tuple[Item, int, int] | None:
        if len(path) < 2 or type(path[1]) is not int:
            return None
        items = self._parts.get(path[0])  # type: ignore[arg-type]
        if items is None or not 0 <= path[1] < len(items):
            return None
        return items[path[1]]

    def __getitem__(self, path: Path_) -> Node:
        part = self._item(path)
        if part is not None:
            item, line, offset = part
            nodes = item.keys if self._is_key else item.values
            return _moved(nodes[(0, *path[2:])], line, offset)
        node = self._skeleton[path]
        return _moved(node, 0, 0, self._deltas)

    def span(self, path: Path_) -> Span:
        """span(self, path) without copying the node (an item's node: moved by arithmetic)."""
        part = self._item(path)
        if part is None:
            return _span(self[path])
        item, line, offset = part
        node = (item.keys if self._is_key else item.values)[(0, *path[2:])]
        start, end = node.start_mark, node.end_mark
        return Span(
            start.index + offset, start.line + line, start.column, end.index + offset, end.line + line
        )

    def __iter__(self) -> Iterator[Path_]:
        for path in self._skeleton:
            if self._item(path) is None:
                yield path
        for key, items in self._parts.items():
            for i, (item, _, _) in enumerate(items):
                nodes = item.keys if self._is_key else item.values
                for relative in nodes:
                    if relative:  # () is the list's own node: the skeleton's
                        yield (key, i, *relative[1:])

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass(frozen=True)
class Span:
    """Where a node's text is: its start (character offset, 0-based line and column) and end."""

    start: int
    line: int
    column: int
    end: int
    end_line: int


SpanTuple = tuple[int, int, int, int, int]  # a Span's fields, in order


def item_spans(nodes: Mapping[Path_, Node], key: str, count: int) -> list[SpanTuple] | None:
    """The spans (start, line, column, end, end_line) of the nodes of items 0..count-1 of the
    top-level list `key`: span(nodes, (key, i)) of each, as tuples, without a Span or a moved
    node per item (the compile memo keys 500 components by them); None when one has none."""
    if isinstance(nodes, _Spliced):
        parts = nodes._parts.get(key)
        if parts is not None and len(parts) == count:
            found: list[SpanTuple] = []
            for item, line, offset in parts:
                if item.span is not None and not nodes._is_key:
                    begin, first, column, stop, last = item.span
                    found.append((begin + offset, first + line, column, stop + offset, last + line))
                    continue
                node = (item.keys if nodes._is_key else item.values).get((0,))
                if node is None:
                    return None
                start, end = node.start_mark, node.end_mark
                begin, stop = start.index + offset, end.index + offset
                found.append((begin, start.line + line, start.column, stop, end.line + line))
            return found
    spans = [span(nodes, (key, i)) for i in range(count)]
    if any(s is None for s in spans):
        return None
    return [(s.start, s.line, s.column, s.end, s.end_line) for s in spans if s is not None]


def span(nodes: Mapping[Path_, Node], path: Path_) -> Span | None:
    """The span of the node at `path` in a SourceDoc's values or keys; None when there is none."""
    try:
        return nodes.span(path) if isinstance(nodes, _Spliced) else _span(nodes[path])
    except KeyError:
        return None


def _span(node: Node) -> Span:
    start, end = node.start_mark, node.end_mark
    return Span(start.index, start.line, start.column, end.index, end.line)


def _moved(node: Node, line: int, offset: int, deltas: list[tuple[int, int]] | None = None) -> Node:
    """A copy of `node` with its marks `line` lines and `offset` characters further (and, for a
    skeleton node, past the items before it: `deltas`)."""
    moved = node.__class__.__new__(node.__class__)  # a plain copy (copy.copy costs 4 times this)
    moved.__dict__.update(node.__dict__)
    moved.start_mark = _mark(node.start_mark, line, offset, deltas)
    moved.end_mark = _mark(node.end_mark, line, offset, deltas)
    return moved


def _mark(mark: Any, line: int, offset: int, deltas: list[tuple[int, int]] | None) -> YamlMark:
    index = mark.index + offset
    if deltas:
        passed = bisect.bisect_right(deltas, mark.index, key=_end)  # placeholders ending at or before it
        index += deltas[passed - 1][1] if passed else 0
    return YamlMark(mark.name, index, mark.line + line, mark.column, None, None)


def _end(delta: tuple[int, int]) -> int:
    return delta[0]
