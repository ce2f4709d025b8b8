"""The expression language of `logic`: parse with `ast`, whitelist, type-check, compile.

An expression is a small subset of Python expressions: literals, field names (and `a.b` for
fields of object fields), arithmetic, comparisons, `and`/`or`/`not`, `x if c else y`, and a
few pure functions. It is checked against the component's input schema at compile time and
compiled to Python source text that reads fields from the message dict `msg`. Nothing is ever
evaluated here or at run time through eval: the generated code contains plain Python.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from autocoder.diagnostics import did_you_mean, one_of
from autocoder.expr.types import BOOLEAN, INTEGER, NULL, NUMBER, STRING, Type, unify

MAX_SOURCE = 2000
MAX_NODES = 400
MAX_DEPTH = 32
MAX_STRING = 1000
MAX_INT = 2**53
MAX_LIST = 100
MAX_POWER = 16
MAX_ROUND_DIGITS = 15  # round(x, d): |d| at most this (beyond it a float has no digits left)
MSG = "msg"

AGGREGATES = ("count", "sum", "avg", "min", "max")


class ExprError(Exception):
    """A rejected expression; `offset` is (line, col) inside the expression text, 0-based."""

    def __init__(
        self,
        code: str,
        message: str,
        node: ast.AST | None = None,
        *,
        expected: str = "",
        fix: str = "",
        offset: tuple[int, int] | None = None,
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        self.expected = expected
        self.fix = fix
        if offset is None and node is not None and hasattr(node, "lineno"):
            offset = (node.lineno - 2, getattr(node, "col_offset", 0))  # source is wrapped as "(\n...\n)"
        self.offset = offset or (0, 0)


@dataclass(frozen=True)
class Compiled:
    """A checked expression: its text, its Python translation, its type and the fields it reads."""

    source: str
    python: str
    type: Type
    fields: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        """The IR form (schemas/ir.v1.schema.json, CompiledExpr)."""
        return {
            "source": self.source,
            "python": self.python,
            "type": self.type.kind,
            "fields": list(self.fields),
        }


@dataclass(frozen=True)
class CompiledAggregate:
    """One aggregate output: the function and the per-message argument (None for count())."""

    source: str
    function: str
    argument: Compiled | None
    type: Type


# --------------------------------------------------------------------------- functions


@dataclass(frozen=True)
class Function:
    arity: tuple[int, int]
    signature: str
    check: Callable[[list[Type]], Type | None]
    emit: Callable[[list[ast.expr]], ast.expr]


def _call(name: str) -> Callable[[list[ast.expr]], ast.expr]:
    return lambda args: ast.Call(ast.Name(name, ast.Load()), args, [])


def _method(name: str) -> Callable[[list[ast.expr]], ast.expr]:
    return lambda args: ast.Call(ast.Attribute(args[0], name, ast.Load()), args[1:], [])


def _numeric_result(args: list[Type]) -> Type | None:
    if all(a.numeric and not a.optional for a in args):
        return INTEGER if all(a.kind == "integer" for a in args) else NUMBER
    return None


def _coalesce(args: list[ast.expr]) -> ast.expr:
    compare = ast.Compare(args[0], [ast.IsNot()], [ast.Constant(None)])
    return ast.IfExp(compare, args[0], args[1])


def _only(kinds: set[str], result: Type | None = None) -> Callable[[list[Type]], Type | None]:
    def check(args: list[Type]) -> Type | None:
        if all(a.kind in kinds and not a.optional for a in args):
            return result or args[0]
        return None

    return check


FUNCTIONS: dict[str, Function] = {
    "abs": Function((1, 1), "abs(number)", _only({"integer", "number"}), _call("abs")),
    "min": Function((2, 8), "min(number, number, ...)", _numeric_result, _call("min")),
    "max": Function((2, 8), "max(number, number, ...)", _numeric_result, _call("max")),
    "round": Function(
        (1, 2),
        "round(number[, integer digits])",
        lambda a: (
            (INTEGER if len(a) == 1 else NUMBER)
            if a[0].numeric and not a[0].optional and (len(a) == 1 or a[1].kind == "integer")
            else None
        ),
        _call("round"),
    ),
    "len": Function((1, 1), "len(string or array)", _only({"string", "array"}, INTEGER), _call("len")),
    "lower": Function((1, 1), "lower(string)", _only({"string"}), _method("lower")),
    "upper": Function((1, 1), "upper(string)", _only({"string"}), _method("upper")),
    "strip": Function((1, 1), "strip(string)", _only({"string"}), _method("strip")),
    "startswith": Function(
        (2, 2), "startswith(string, string)", _only({"string"}, BOOLEAN), _method("startswith")
    ),
    "endswith": Function((2, 2), "endswith(string, string)", _only({"string"}, BOOLEAN), _method("endswith")),
    "str": Function((1, 1), "str(value)", lambda a: STRING if not a[0].optional else None, _call("str")),
    "int": Function((1, 1), "int(number)", _only({"integer", "number"}, INTEGER), _call("int")),
    "float": Function((1, 1), "float(number)", _only({"integer", "number"}, NUMBER), _call("float")),
    "coalesce": Function(
        (2, 2),
        "coalesce(optional value, fallback)",
        lambda a: unify(a[0].required(), a[1]) if not a[1].optional else None,
        _coalesce,
    ),
}

_BINOPS = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
}
_ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)


# --------------------------------------------------------------------------- entry points


def compile_expression(text: str, env: Mapping[str, Type], *, want: str | None = None) -> Compiled:
    """Check `text` against the fields in `env` and compile it.

    want: "boolean" for conditions (where, when, binding condition); None for any value.
    """
    tree = _parse(text)
    checker = _Checker(env)
    typ, py = checker.visit(tree.body, 0)
    if want == "boolean" and (typ.kind != "boolean" or typ.optional):
        raise ExprError(
            "AC203",
            f"condition has type {typ}",
            tree.body,
            expected="a boolean",
            fix="compare values, e.g. `total >= 100`",
        )
    python = ast.unparse(ast.fix_missing_locations(py))
    return Compiled(text, python, typ, tuple(sorted(checker.used)))


def compile_aggregate(text: str, env: Mapping[str, Type]) -> CompiledAggregate:
    """An aggregate output: exactly one of count(), sum(x), avg(x), min(x), max(x)."""
    tree = _parse(text)
    call = tree.body
    if not (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Name)
        and call.func.id in AGGREGATES
        and not call.keywords
    ):
        raise ExprError(
            "AC205",
            "an aggregate output must be one aggregate call",
            call,
            expected="count(), sum(x), avg(x), min(x) or max(x)",
            fix="e.g. `avg(temperature)`; compute other values in a transformer after it",
        )
    name = call.func.id
    if name == "count":
        if call.args:
            raise ExprError(
                "AC205", "count() takes no argument", call, expected="count()", fix="write count()"
            )
        return CompiledAggregate(text, "count", None, INTEGER)
    if len(call.args) != 1:
        raise ExprError(
            "AC205",
            f"{name}() takes one argument",
            call,
            expected=f"{name}(field)",
            fix=f"write {name}(field)",
        )
    arg_text = ast.get_source_segment(_wrap(text), call.args[0]) or ast.unparse(call.args[0])
    checker = _Checker(env)
    typ, py = checker.visit(call.args[0], 1)
    allowed = {"integer", "number"} if name in ("sum", "avg") else {"integer", "number", "string"}
    if typ.kind not in allowed or typ.optional:
        raise ExprError(
            "AC203",
            f"{name}() over a value of type {typ}",
            call.args[0],
            expected=" or ".join(sorted(allowed)),
            fix="aggregate a numeric field, or coalesce(field, 0) an optional one",
        )
    argument = Compiled(
        arg_text, ast.unparse(ast.fix_missing_locations(py)), typ, tuple(sorted(checker.used))
    )
    result = NUMBER if name == "avg" else typ
    return CompiledAggregate(text, name, argument, result)


def _wrap(text: str) -> str:
    return f"(\n{text}\n)"


def _parse(text: str) -> ast.Expression:
    if len(text) > MAX_SOURCE:
        raise ExprError(
            "AC204",
            f"expression is {len(text)} characters long",
            expected=f"at most {MAX_SOURCE}",
            fix="split the logic over components",
        )
    if "\x00" in text:
        raise ExprError("AC200", "expression contains a NUL character", fix="remove it")
    try:
        # Wrapping in parentheses lets an expression span lines (YAML block scalars).
        tree = ast.parse(_wrap(text), mode="eval")
    except SyntaxError as exc:
        line = min(max((exc.lineno or 2) - 2, 0), text.count("\n"))
        offset = (line, max((exc.offset or 1) - 1, 0))
        code = "AC204" if "too many nested" in exc.msg else "AC200"
        raise ExprError(
            code,
            f"invalid expression: {exc.msg}",
            offset=offset,
            expected="a Python-style expression such as `quantity * unit_price`",
            fix="check brackets, quotes and operators",
        ) from None
    except (RecursionError, MemoryError):
        raise ExprError(
            "AC204",
            "expression is nested too deeply",
            expected=f"at most {MAX_DEPTH} levels",
            fix="simplify it",
        ) from None
    count = sum(1 for _ in ast.walk(tree))
    if count > MAX_NODES:
        raise ExprError(
            "AC204",
            f"expression has {count} syntax nodes",
            expected=f"at most {MAX_NODES}",
            fix="split the logic over components",
        )
    return tree


# --------------------------------------------------------------------------- the checker


class _Checker:
    """Walks a whitelisted AST: returns (type, translated AST) or raises ExprError."""

    def __init__(self, env: Mapping[str, Type]):
        self.env = env
        self.used: set[str] = set()

    def visit(self, node: ast.expr, depth: int) -> tuple[Type, ast.expr]:
        if depth > MAX_DEPTH:
            raise ExprError(
                "AC204",
                "expression is nested too deeply",
                node,
                expected=f"at most {MAX_DEPTH} levels",
                fix="simplify it",
            )
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise ExprError(
                "AC201",
                f"{_describe(node)} is not allowed in expressions",
                node,
                expected="fields, literals, arithmetic, comparisons, and/or/not, "
                "`a if c else b` and the functions " + ", ".join(sorted(FUNCTIONS)),
                fix="rewrite it with the allowed constructs",
            )
        return method(node, depth + 1)

    # -- leaves

    def _Constant(self, node: ast.Constant, depth: int) -> tuple[Type, ast.expr]:
        value = node.value
        if isinstance(value, bool):
            return BOOLEAN, ast.Constant(value)
        if value is None:
            return NULL, ast.Constant(None)
        if isinstance(value, int):
            if abs(value) > MAX_INT:
                raise ExprError(
                    "AC204",
                    "integer literal too large",
                    node,
                    expected="at most 2**53",
                    fix="use a smaller number",
                )
            return INTEGER, ast.Constant(value)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ExprError("AC204", "number literal is not finite", node, fix="use a finite number")
            return NUMBER, ast.Constant(value)
        if isinstance(value, str):
            if len(value) > MAX_STRING:
                raise ExprError(
                    "AC204",
                    f"string literal of {len(value)} characters",
                    node,
                    expected=f"at most {MAX_STRING}",
                    fix="shorten it",
                )
            return STRING, ast.Constant(value)
        raise ExprError(
            "AC201",
            f"{type(value).__name__} literals are not allowed",
            node,
            expected="strings, numbers, true/false, None",
            fix="remove the literal",
        )

    def _Name(self, node: ast.Name, depth: int) -> tuple[Type, ast.expr]:
        name = node.id
        if name.startswith("_"):
            raise ExprError(
                "AC201",
                f"name '{name}' starts with '_'",
                node,
                expected="a field name",
                fix="names starting with _ (dunders) are never allowed",
            )
        if name in ("true", "false"):
            return BOOLEAN, ast.Constant(name == "true")
        if name == "null":
            return NULL, ast.Constant(None)
        if name not in self.env:
            hint = did_you_mean(name, self.env)
            raise ExprError(
                "AC202",
                f"unknown field '{name}'",
                node,
                expected=one_of(self.env),
                fix=hint or "use a field of the input schema",
            )
        self.used.add(name)
        return self.env[name], _field(ast.Name(MSG, ast.Load()), name)

    def _Attribute(self, node: ast.Attribute, depth: int) -> tuple[Type, ast.expr]:
        if node.attr.startswith("_"):
            raise ExprError(
                "AC201",
                f"attribute '{node.attr}' starts with '_'",
                node,
                expected="a field of an object field",
                fix="dunder and private attribute access is never allowed",
            )
        base_type, base = self.visit(node.value, depth)
        if base_type.kind != "object" or base_type.fields is None:
            raise ExprError(
                "AC201",
                f"'.{node.attr}' on a value of type {base_type}",
                node,
                expected="field access on an object field (with declared fields)",
                fix="method calls are not allowed: use the functions, e.g. lower(name)",
            )
        member = base_type.field(node.attr)
        if member is None:
            names = [k for k, _ in base_type.fields]
            raise ExprError(
                "AC202",
                f"unknown field '{node.attr}'",
                node,
                expected=one_of(names),
                fix=did_you_mean(node.attr, names) or "use a declared field",
            )
        if base_type.optional:
            member = Type(member.kind, True, member.item, member.fields)
        return member, _field(base, node.attr)

    def _List(self, node: ast.List | ast.Tuple, depth: int) -> tuple[Type, ast.expr]:
        if len(node.elts) > MAX_LIST:
            raise ExprError(
                "AC204",
                f"list literal of {len(node.elts)} items",
                node,
                expected=f"at most {MAX_LIST}",
                fix="use an enum in the schema instead",
            )
        item: Type | None = None
        elements = []
        for elt in node.elts:
            if not isinstance(elt, ast.Constant):
                raise ExprError(
                    "AC201",
                    "list items must be literals",
                    elt,
                    expected="constants such as 'a' or 3",
                    fix="use literal values",
                )
            typ, py = self.visit(elt, depth)
            item = typ if item is None else unify(item, typ)
            if item is None:
                raise ExprError(
                    "AC203",
                    "list mixes types",
                    elt,
                    expected="items of one type",
                    fix="make every item the same type",
                )
            elements.append(py)
        return Type("array", item=item), ast.Tuple(elements, ast.Load())

    _Tuple = _List

    # -- operators

    def _BinOp(self, node: ast.BinOp, depth: int) -> tuple[Type, ast.expr]:
        op = type(node.op)
        if op not in _BINOPS:
            raise ExprError(
                "AC201",
                f"operator {type(node.op).__name__} is not allowed",
                node,
                expected="+ - * / // % **",
                fix="use arithmetic operators only",
            )
        left_t, left = self.visit(node.left, depth)
        right_t, right = self.visit(node.right, depth)
        symbol = _BINOPS[op]
        if op is ast.Pow:
            exp = node.right
            if not (isinstance(exp, ast.Constant) and type(exp.value) is int and 0 <= exp.value <= MAX_POWER):
                raise ExprError(
                    "AC204",
                    "exponent must be an integer literal from 0 to 16",
                    node.right,
                    expected=f"x ** n with 0 <= n <= {MAX_POWER}",
                    fix="use a small literal exponent",
                )
        if op is ast.Add and left_t.kind == right_t.kind == "string":
            result = STRING
        elif left_t.numeric and right_t.numeric:
            integral = left_t.kind == right_t.kind == "integer" and op is not ast.Div
            result = INTEGER if integral else NUMBER
        else:
            raise ExprError(
                "AC203",
                f"'{symbol}' between {left_t} and {right_t}",
                node,
                expected="numbers on both sides" + (" (or two strings)" if op is ast.Add else ""),
                fix="convert with int(), float() or str(), or use other fields",
            )
        if left_t.optional or right_t.optional:
            raise _optional_error(node, symbol)
        return result, ast.BinOp(left, node.op, right)

    def _UnaryOp(self, node: ast.UnaryOp, depth: int) -> tuple[Type, ast.expr]:
        typ, operand = self.visit(node.operand, depth)
        if isinstance(node.op, ast.Not):
            if typ.kind != "boolean" or typ.optional:
                raise ExprError(
                    "AC203",
                    f"'not' applied to {typ}",
                    node,
                    expected="a boolean",
                    fix="compare first, e.g. `not (x > 1)`",
                )
            return BOOLEAN, ast.UnaryOp(ast.Not(), operand)
        if isinstance(node.op, ast.USub | ast.UAdd):
            if not typ.numeric or typ.optional:
                raise ExprError(
                    "AC203",
                    f"sign applied to {typ}",
                    node,
                    expected="a number",
                    fix="apply - or + to numbers only",
                )
            return typ, ast.UnaryOp(node.op, operand)
        raise ExprError(
            "AC201", "operator ~ is not allowed", node, expected="- + not", fix="use arithmetic instead"
        )

    def _BoolOp(self, node: ast.BoolOp, depth: int) -> tuple[Type, ast.expr]:
        values = []
        for value in node.values:
            typ, py = self.visit(value, depth)
            if typ.kind != "boolean" or typ.optional:
                raise ExprError(
                    "AC203",
                    f"'and'/'or' operand has type {typ}",
                    value,
                    expected="booleans",
                    fix="compare values, e.g. `a > 1 and b == 'x'`",
                )
            values.append(py)
        return BOOLEAN, ast.BoolOp(node.op, values)

    def _Compare(self, node: ast.Compare, depth: int) -> tuple[Type, ast.expr]:
        left_t, left = self.visit(node.left, depth)
        first = left
        comparators = []
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right_t, right = self.visit(right_node, depth)
            self._check_compare(node, op, left_t, right_t)
            comparators.append(right)
            left_t = right_t
        return BOOLEAN, ast.Compare(first, node.ops, comparators)

    def _check_compare(self, node: ast.Compare, op: ast.cmpop, left: Type, right: Type) -> None:
        if isinstance(op, ast.Is | ast.IsNot):
            if right.kind != "null":
                raise ExprError(
                    "AC201",
                    "'is' only compares with None",
                    node,
                    expected="`x is None` or `x is not None`",
                    fix="use == to compare values",
                )
            return
        if isinstance(op, ast.In | ast.NotIn):
            if right.kind == "string" and left.kind == "string" and not (left.optional or right.optional):
                return
            if (
                right.kind == "array"
                and not right.optional
                and (right.item is None or unify(left.required(), right.item) is not None)
            ):
                return
            raise ExprError(
                "AC203",
                f"'in' between {left} and {right}",
                node,
                expected="a value in a list of the same type, or a string in a string",
                fix="e.g. `status in ['new', 'paid']`",
            )
        if isinstance(op, _ORDERING):
            if left.optional or right.optional:
                raise _optional_error(node, "comparison")
            if (left.numeric and right.numeric) or left.kind == right.kind == "string":
                return
            raise ExprError(
                "AC203",
                f"ordering comparison between {left} and {right}",
                node,
                expected="two numbers or two strings",
                fix="compare values of one type",
            )
        if left.kind == "null" or right.kind == "null":
            raise ExprError(
                "AC201",
                "compare with None using 'is'",
                node,
                expected="`x is None`",
                fix="write `x is None` or `x is not None`",
            )
        if unify(left, right) is None:
            raise ExprError(
                "AC203",
                f"'==' between {left} and {right} is always false",
                node,
                expected="values of one type",
                fix="compare values of one type",
            )

    def _IfExp(self, node: ast.IfExp, depth: int) -> tuple[Type, ast.expr]:
        test_t, test = self.visit(node.test, depth)
        if test_t.kind != "boolean" or test_t.optional:
            raise ExprError(
                "AC203",
                f"condition of 'if' has type {test_t}",
                node.test,
                expected="a boolean",
                fix="compare values, e.g. `x if a > 1 else y`",
            )
        body_t, body = self.visit(node.body, depth)
        else_t, orelse = self.visit(node.orelse, depth)
        result = unify(body_t, else_t)
        if result is None:
            raise ExprError(
                "AC203",
                f"branches have types {body_t} and {else_t}",
                node,
                expected="both branches of one type",
                fix="make both branches the same type",
            )
        return result, ast.IfExp(test, body, orelse)

    def _Call(self, node: ast.Call, depth: int) -> tuple[Type, ast.expr]:
        if not isinstance(node.func, ast.Name):
            raise ExprError(
                "AC201",
                "only plain function calls are allowed",
                node,
                expected=", ".join(sorted(FUNCTIONS)),
                fix="method calls and attribute tricks are not allowed: use lower(x), not x.lower()",
            )
        name = node.func.id
        if name.startswith("_"):
            raise ExprError(
                "AC201",
                f"name '{name}' starts with '_'",
                node,
                expected="an allowed function",
                fix="names starting with _ (dunders) are never allowed",
            )
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise ExprError(
                "AC201",
                f"keyword or * arguments in {name}()",
                node,
                expected="positional arguments",
                fix="pass arguments by position",
            )
        function = FUNCTIONS.get(name)
        if function is None:
            hint = "aggregates belong in an aggregator's `aggregate`" if name in AGGREGATES else ""
            raise ExprError(
                "AC205",
                f"function '{name}' is not allowed",
                node,
                expected="one of " + ", ".join(sorted(FUNCTIONS)),
                fix=hint or did_you_mean(name, FUNCTIONS) or "use an allowed function",
            )
        low, high = function.arity
        if not low <= len(node.args) <= high:
            raise ExprError(
                "AC205",
                f"{name}() takes {low}..{high} arguments, got {len(node.args)}",
                node,
                expected=function.signature,
                fix=f"call it as {function.signature}",
            )
        typed = [self.visit(a, depth) for a in node.args]
        result = function.check([t for t, _ in typed])
        if name == "round" and len(node.args) == 2 and result is not None:
            _check_round_digits(node.args[1], typed[1][0])
        if result is None:
            shown = ", ".join(str(t) for t, _ in typed)
            raise ExprError(
                "AC203",
                f"{name}() applied to ({shown})",
                node,
                expected=function.signature,
                fix="optional fields need coalesce(field, fallback) first"
                if any(t.optional for t, _ in typed)
                else "pass values of the right type",
            )
        return result, function.emit([py for _, py in typed])


def _check_round_digits(node: ast.expr, typ: Type) -> None:
    """AC206 unless round()'s digits are known to lie within +-MAX_ROUND_DIGITS: an integer
    literal in range, or a required integer field whose schema bounds it to that range.
    (round(x, d) with d from a message costs time in |d|: a huge d blocks the server.)"""
    limit = MAX_ROUND_DIGITS
    literal = _int_literal(node)
    if literal is not None:
        if -limit <= literal <= limit:
            return
        what = f"round() digits {literal} out of range"
    elif typ.optional:
        what = "round() digits come from a value that may be missing"
    elif typ.minimum is not None and typ.maximum is not None:
        if -limit <= typ.minimum and typ.maximum <= limit:
            return
        what = f"round() digits come from a field bounded to {typ.minimum}..{typ.maximum}"
    else:
        what = "round() digits come from a value without declared bounds"
    raise ExprError(
        "AC206",
        what,
        node,
        expected=f"an integer literal from -{limit} to {limit}, or a required integer field "
        f"with minimum >= -{limit} and maximum <= {limit}",
        fix=f"write the digits as a literal, e.g. round(x, 2), or give the field "
        f"`minimum: -{limit}` and `maximum: {limit}` (or tighter) in its schema",
    )


def _int_literal(node: ast.expr) -> int | None:
    """The value of an integer literal such as 2 or -2 (None for anything else)."""
    sign = 1
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        sign = -1 if isinstance(node.op, ast.USub) else 1
        node = node.operand
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return sign * node.value
    return None


def _field(base: ast.expr, name: str) -> ast.expr:
    return ast.Subscript(base, ast.Constant(name), ast.Load())


def _optional_error(node: ast.AST, what: str) -> ExprError:
    return ExprError(
        "AC203",
        f"{what} on a field that may be missing",
        node,
        expected="required fields or ones with a default",
        fix="use coalesce(field, fallback), or give the field a default",
    )


def _describe(node: ast.AST) -> str:
    names = {
        "Lambda": "lambda",
        "ListComp": "a comprehension",
        "SetComp": "a comprehension",
        "DictComp": "a comprehension",
        "GeneratorExp": "a generator",
        "Subscript": "indexing ([...])",
        "Starred": "unpacking (*)",
        "JoinedStr": "an f-string",
        "FormattedValue": "an f-string",
        "NamedExpr": "assignment (:=)",
        "Await": "await",
        "Yield": "yield",
        "YieldFrom": "yield",
        "Dict": "a dict literal",
        "Set": "a set literal",
        "Slice": "slicing",
    }
    return names.get(type(node).__name__, type(node).__name__)
