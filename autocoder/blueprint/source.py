"""Load a blueprint YAML file safely, keeping the line and column of every node.

PyYAML's safe loader composes a node tree that knows where each node starts; we build the
plain Python data ourselves from that tree so that we can (1) remember a position for every
path, (2) reject duplicate keys, merge keys and non-string keys, and (3) bound the work a
hostile file can cause (size, nesting depth, alias expansion).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from autocoder.diagnostics import BlueprintError, Diagnostic
from autocoder.layout import MAX_BLUEPRINT_BYTES as MAX_BYTES

MAX_DEPTH = 64
MAX_NODES = 200_000
# Every number in a blueprint is finite, and every integer fits a signed 64-bit int: what JSON,
# the IR and the generated system's storage can all hold.
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
_INT_TAG = "tag:yaml.org,2002:int"
_STR_TAG = "tag:yaml.org,2002:str"

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Mark:
    """Where a node starts (1-based) and how a scalar was written (for expression columns)."""

    line: int
    col: int
    style: str | None = None
    single_line: bool = True


@dataclass
class SourceDoc:
    """A loaded blueprint: its data plus the YAML nodes of values and of mapping keys.

    Nodes, not Marks: most positions are never asked for (a clean blueprint reports nothing),
    so a Mark is made only when a diagnostic needs one."""

    file: str
    data: Any
    values: Mapping[Path_, Node] = field(default_factory=dict)
    keys: Mapping[Path_, Node] = field(default_factory=dict)
    text: str = ""  # the decoded file (the nodes' marks index into it: analysis.memo's keys)
    # blueprint/splice.py: per list parsed item by item, its items' texts (None: parsed whole)
    items: dict[str, list[str]] | None = None

    def mark(self, path: Path_, *, key: bool = False) -> Mark:
        """The position of the deepest known node on `path` (the key's own when key=True)."""
        if key and path in self.keys:
            return _mark(self.keys[path])
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            if prefix in self.values:
                return _mark(self.values[prefix])
        return Mark(1, 1)

    def diag(self, path: Path_, code: str, message: str, *, key: bool = False, **kw: str) -> Diagnostic:
        m = self.mark(path, key=key)
        return Diagnostic(self.file, m.line, m.col, code, message, **kw)


_TAB_INDENT = re.compile(r"^[ ]*\t", re.MULTILINE)


def parse_yaml(raw: bytes, name: str) -> SourceDoc:
    """Parse blueprint bytes; raise BlueprintError with positioned diagnostics on any problem."""
    return parse_text(decode(raw, name), name)


def decode(raw: bytes, name: str) -> str:
    """The blueprint's text; BlueprintError when it is too large, not UTF-8 or indented with tabs
    (the checks before any YAML parsing)."""
    if len(raw) > MAX_BYTES:
        raise BlueprintError(
            [
                Diagnostic(
                    name,
                    1,
                    1,
                    "AC005",
                    f"file is {len(raw)} bytes",
                    expected=f"at most {MAX_BYTES} bytes",
                    fix="split the system or remove generated content from the blueprint",
                )
            ]
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise BlueprintError(
            [Diagnostic(name, line, 1, "AC001", "file is not valid UTF-8", fix="save the file as UTF-8")]
        ) from None
    tab = _TAB_INDENT.search(text) if "\t" in text else None
    if tab:
        line = text.count("\n", 0, tab.start()) + 1
        col = tab.end() - tab.start()
        raise BlueprintError(
            [
                Diagnostic(
                    name,
                    line,
                    col,
                    "AC003",
                    "tab character in indentation",
                    expected="spaces",
                    fix="indent with spaces (YAML forbids tabs there)",
                )
            ]
        )
    return text


def parse_text(text: str, name: str) -> SourceDoc:
    """parse_yaml of text that passed `decode`."""
    return parse_counted(text, name)[0]


def parse_counted(text: str, name: str) -> tuple[SourceDoc, int]:
    """parse_text, and how many nodes the document has (what MAX_NODES bounds)."""
    node = _compose(text, name)
    if node is None:
        raise BlueprintError(
            [
                Diagnostic(
                    name,
                    1,
                    1,
                    "AC004",
                    "file is empty",
                    expected="a mapping with schema_version, system, ...",
                    fix="start from `autocoder init` or an example under examples/",
                )
            ]
        )
    builder = _Builder(name)
    data = builder.build(node, (), 0)
    if builder.errors:
        raise BlueprintError(builder.errors)
    if not isinstance(data, dict):
        m = _mark(node)
        raise BlueprintError(
            [
                Diagnostic(
                    name,
                    m.line,
                    m.col,
                    "AC004",
                    f"the document is a {_yaml_type(data)}, not a mapping",
                    expected="a mapping of keys (schema_version: ..., ...)",
                    fix="write the blueprint as `key: value` lines",
                )
            ]
        )
    return SourceDoc(name, data, builder.values, builder.keys, text), builder.count


@dataclass(frozen=True)
class Item:
    """One item of a block sequence parsed on its own (blueprint/splice.py): its data and the
    nodes of its paths (relative: the item is (0,)), with marks relative to its own text."""

    data: Any
    values: dict[Path_, Node]
    keys: dict[Path_, Node]
    nodes: int  # how many nodes it has (the sequence around it not counted)
    # its node's start (character, line, column) and end (character, line) in its own text, for
    # splice.item_spans: the compile memo's keys, made without reading the node and its marks
    # (in a warm worker's child, reading 500 nodes copies the pages they lie on)
    span: tuple[int, int, int, int, int] | None = None


def parse_item(text: str, name: str, indent: int) -> Item | None:
    """`text` (whole lines) as the one item of a block sequence at column `indent`, built at the
    depth such an item has in a blueprint's top-level list; None on any problem or when the
    text is not exactly one such item (the whole file is then parsed, and reports it)."""
    try:
        node = _compose(text, name)
    except BlueprintError:
        return None
    if not isinstance(node, SequenceNode) or len(node.value) != 1:
        return None
    if (node.start_mark.line, node.start_mark.column) != (0, indent):  # its dash, where expected
        return None
    builder = _Builder(name)
    data = builder.build(node, (), 1)  # as the list's node in the file: the item at depth 2
    if builder.errors:
        return None
    own = builder.values.get((0,))
    span = None
    if own is not None:
        start, end = own.start_mark, own.end_mark
        span = (start.index, start.line, start.column, end.index, end.line)
    return Item(data[0], builder.values, builder.keys, builder.count - 1, span)


# libyaml's parser (in PyYAML's wheels) is ~10x faster and keeps the same marks.
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# (kind, value, implicit) -> tag, for short scalars (keys, names, numbers): most repeat
_RESOLVED: dict[tuple[Any, Any, Any], str] = {}
_RESOLVED_MAX = 50_000  # entries
_RESOLVED_VALUE_MAX = 100  # characters of a scalar worth remembering


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    """The safe loader, remembering each short scalar's implicit tag: libyaml's composer asks
    the pure-Python resolver (a regular expression per candidate tag) for every node, a
    tenth of parsing a 500-component blueprint. The resolver is a pure function of its
    arguments for the safe loader (its tables are fixed; it has no path resolvers)."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        key = (kind, value, implicit)
        tag = _RESOLVED.get(key)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if len(_RESOLVED) < _RESOLVED_MAX and (value is None or len(value) <= _RESOLVED_VALUE_MAX):
                _RESOLVED[key] = tag
        return tag


def _compose(text: str, name: str) -> Node | None:
    loader = None
    try:
        loader = _Loader(text)
        return loader.get_single_node()
    except yaml.reader.ReaderError as exc:
        raise BlueprintError([_reader_diag(exc, text, name)]) from None
    except yaml.composer.ComposerError as exc:
        if "single document" in f"{exc.problem} {exc.context}":
            m = exc.problem_mark
            raise BlueprintError(
                [
                    Diagnostic(
                        name,
                        m.line + 1,
                        m.column + 1,
                        "AC006",
                        "the file holds more than one YAML document",
                        expected="a single document",
                        fix="remove the extra `---` section",
                    )
                ]
            ) from None
        raise BlueprintError([_syntax_diag(exc, name)]) from None
    except yaml.MarkedYAMLError as exc:
        raise BlueprintError([_syntax_diag(exc, name)]) from None
    except yaml.YAMLError as exc:
        raise BlueprintError([Diagnostic(name, 1, 1, "AC001", f"YAML error: {exc}")]) from None
    except RecursionError:
        raise BlueprintError(
            [
                Diagnostic(
                    name,
                    1,
                    1,
                    "AC005",
                    "the document is nested too deeply to parse",
                    expected=f"at most {MAX_DEPTH} levels",
                    fix="flatten the structure",
                )
            ]
        ) from None
    finally:
        if loader is not None:
            loader.dispose()


def _reader_diag(exc: yaml.reader.ReaderError, text: str, name: str) -> Diagnostic:
    line = text.count("\n", 0, exc.position) + 1
    col = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
    char = exc.character if isinstance(exc.character, int) else ord(exc.character)
    return Diagnostic(
        name,
        line,
        col,
        "AC001",
        f"character U+{char:04X} is not allowed in YAML",
        fix="remove the control character (a binary file or a bad copy-paste?)",
    )


def _syntax_diag(exc: yaml.MarkedYAMLError, name: str) -> Diagnostic:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    what = exc.problem or "invalid YAML"
    if exc.context:
        what = f"{what} ({exc.context})"
    return Diagnostic(
        name,
        line,
        col,
        "AC001",
        f"YAML syntax error: {what}",
        fix="check indentation, colons and quotes near this position; "
        "quote values that contain ': ' or start with special characters",
    )


def _mark(node: Node) -> Mark:
    m = node.start_mark
    style = node.style if isinstance(node, ScalarNode) else None
    return Mark(m.line + 1, m.column + 1, style, node.start_mark.line == node.end_mark.line)


def _yaml_type(value: Any) -> str:
    return {
        dict: "mapping",
        list: "list",
        str: "string",
        int: "integer",
        float: "number",
        bool: "boolean",
        type(None): "null",
    }.get(type(value), type(value).__name__)


class _Builder:
    """Turns a composed node tree into plain data, recording positions and problems."""

    def __init__(self, name: str):
        self.name = name
        self.values: dict[Path_, Node] = {}
        self.keys: dict[Path_, Node] = {}
        self.errors: list[Diagnostic] = []
        self.count = 0
        self._scalars = yaml.SafeLoader("")

    def error(self, node: Node, code: str, message: str, **kw: str) -> None:
        m = _mark(node)
        self.errors.append(Diagnostic(self.name, m.line, m.col, code, message, **kw))

    def build(self, node: Node, path: Path_, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            if self.count == MAX_NODES + 1:
                self.error(
                    node,
                    "AC005",
                    "the document expands to too many nodes",
                    expected=f"at most {MAX_NODES}",
                    fix="remove alias chains (*name) that multiply content",
                )
            return None
        if depth > MAX_DEPTH:
            self.error(
                node,
                "AC005",
                "nesting too deep",
                expected=f"at most {MAX_DEPTH} levels",
                fix="flatten the structure",
            )
            return None
        self.values[path] = node
        if isinstance(node, MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        return self._scalar(node)

    def _scalar(self, node: ScalarNode, *, key: bool = False) -> Any:
        """The value of a scalar; numbers out of range are AC007 (for a key: any non-string,
        so that the key is refused as a key)."""
        if node.tag == _STR_TAG:  # most scalars: the text is the value (what PyYAML returns)
            return node.value
        try:
            if node.tag == _INT_TAG:
                value: Any = yaml_int(node.value)  # PyYAML's costs time quadratic in the digits
            else:
                value = self._scalars.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            self.error(
                node,
                "AC001",
                f"cannot read this value: {exc.problem}",
                fix="quote the value to make it a string",
            )
            return None
        except (ValueError, TypeError, AttributeError, IndexError, KeyError, OverflowError):
            tag = node.tag.rsplit(":", 1)[-1]
            self.error(
                node,
                "AC001",
                f"cannot read {_clip(node.value)!r} as a YAML {tag}",
                fix="quote the value to make it a string, or remove the !!" + tag + " tag",
            )
            return None
        if value is _OUT_OF_RANGE or (isinstance(value, float) and not math.isfinite(value)):
            if key:
                return value if isinstance(value, float) else 0
            self._number_error(node, value)
            return None
        if not isinstance(value, str | int | float | bool | type(None)):
            # timestamps, binary and other YAML types: keep the text, the schema decides.
            return node.value
        return value

    def _number_error(self, node: ScalarNode, value: Any) -> None:
        if value is _OUT_OF_RANGE:
            size = f" ({len(node.value)} characters)" if len(node.value) > 40 else ""
            what = f"integer {_clip(node.value)}{size} is outside the signed 64-bit range"
        else:
            what = f"number {_clip(node.value)} is not finite"
        self.error(
            node,
            "AC007",
            what,
            expected=f"finite numbers, and integers that fit in signed 64 bits ({INT_MIN}..{INT_MAX})",
            fix="use a smaller number, or quote the value to make it a string",
        )

    def _mapping(self, node: MappingNode, path: Path_, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.error(
                    key_node,
                    "AC006",
                    "YAML merge keys (<<) are not supported",
                    fix="write the keys out, or use an alias (*name) as a whole value",
                )
                continue
            if not isinstance(key_node, ScalarNode):
                self.error(
                    key_node,
                    "AC006",
                    "a mapping key must be a plain string",
                    fix="use a simple name as the key",
                )
                continue
            key = self._scalar(key_node, key=True)
            if not isinstance(key, str):
                self.error(
                    key_node,
                    "AC006",
                    f"key {key_node.value!r} is read as a {_yaml_type(key)}, not a string",
                    fix=f"quote it: '{key_node.value}'",
                )
                continue
            if key in result:
                first = _mark(self.keys[(*path, key)])
                self.error(
                    key_node,
                    "AC002",
                    f"duplicate key '{key}' (first at line {first.line})",
                    expected="each key once per mapping",
                    fix="remove or merge one of the two entries",
                )
                continue
            self.keys[(*path, key)] = key_node
            result[key] = self.build(value_node, (*path, key), depth + 1)
        return result


class _OutOfRangeType:
    """An integer outside INT_MIN..INT_MAX (never built: its digits may be millions)."""


_OUT_OF_RANGE = _OutOfRangeType()


def yaml_int(text: str) -> int | _OutOfRangeType:
    """A YAML 1.1 integer as PyYAML reads it (`_` separators, 0b binary, 0x hex, 0 octal,
    1:30 base 60), with work bounded by the 64-bit range: _OUT_OF_RANGE outside it, where PyYAML
    would raise at Python's 4,300-digit limit or multiply for minutes. ValueError when the text
    is not an integer at all (e.g. `!!int abc`)."""
    value = text.replace("_", "")
    sign = 1
    if value.startswith("-"):
        sign, value = -1, value[1:]
    elif value.startswith("+"):
        value = value[1:]
    if not value:
        raise ValueError("empty integer")
    if ":" in value and not value.startswith("0"):
        parts = value.split(":")
        if len(parts) > 12 or any(len(part) > 20 for part in parts):
            return _OUT_OF_RANGE  # 60**11 is above 2**63, and the first part is not 0
        number = 0
        for part in parts:
            number = number * 60 + int(part)
    else:
        base, digits = 10, value
        if value.startswith(("0b", "0x")):
            base, digits = (2 if value[1] == "b" else 16), value[2:]
        elif value.startswith("0"):
            base = 8
        if not digits:
            raise ValueError("no digits")
        significant = digits.lstrip("0") or "0"
        if len(significant) > 64:  # more digits than 2**63 has in any of these bases
            return _OUT_OF_RANGE
        number = int(significant, base)
    number *= sign
    return number if INT_MIN <= number <= INT_MAX else _OUT_OF_RANGE


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else f"{text[:limit]}..."
