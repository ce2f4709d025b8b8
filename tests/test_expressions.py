"""The expression language: what compiles (and to what), and every rejection with its reason."""

from __future__ import annotations

import pytest
from conftest import EXAMPLE, compile_data, compile_text, component, only

from autocoder.expr.compiler import ExprError, compile_aggregate, compile_expression
from autocoder.expr.types import BOOLEAN, INTEGER, NUMBER, STRING, Type

ENV = {
    "quantity": INTEGER,
    "unit_price": NUMBER,
    "name": STRING,
    "vip": BOOLEAN,
    "discount": Type("number", optional=True),
    "tags": Type("array", item=STRING),
    "customer": Type("object", fields=(("id", STRING), ("tier", INTEGER))),
}


@pytest.mark.parametrize(
    ("text", "python", "kind"),
    [
        ("quantity * unit_price", "msg['quantity'] * msg['unit_price']", "number"),
        ("quantity + 1", "msg['quantity'] + 1", "integer"),
        ("quantity / 2", "msg['quantity'] / 2", "number"),
        ("-quantity ** 2", "-msg['quantity'] ** 2", "integer"),
        ("lower(name) + '!'", "msg['name'].lower() + '!'", "string"),
        ("quantity > 1 and not vip", "msg['quantity'] > 1 and (not msg['vip'])", "boolean"),
        ("name in ['a', 'b']", "msg['name'] in ('a', 'b')", "boolean"),
        ("'gold' in tags", "'gold' in msg['tags']", "boolean"),
        ("customer.tier >= 2", "msg['customer']['tier'] >= 2", "boolean"),
        (
            "coalesce(discount, 0) * unit_price",
            "(msg['discount'] if msg['discount'] is not None else 0) * msg['unit_price']",
            "number",
        ),
        ("discount is None", "msg['discount'] is None", "boolean"),
        ("round(unit_price, 2) if vip else 0", "round(msg['unit_price'], 2) if msg['vip'] else 0", "number"),
        ("max(quantity, 10)", "max(msg['quantity'], 10)", "integer"),
        ("len(tags) == 0", "len(msg['tags']) == 0", "boolean"),
        ("startswith(name, 'A')", "msg['name'].startswith('A')", "boolean"),
        ("1 < quantity <= 10", "1 < msg['quantity'] <= 10", "boolean"),
        ("true", "True", "boolean"),
    ],
)
def test_compiles_to_plain_python(text, python, kind):
    compiled = compile_expression(text, ENV)
    assert compiled.python == python
    assert compiled.type.kind == kind
    compile(compiled.python, "<expr>", "eval")  # valid Python


def test_compiled_code_computes_the_right_value():
    compiled = compile_expression("coalesce(discount, 0.5) * quantity + len(tags)", ENV)
    code = compile(compiled.python, "<expr>", "eval")
    msg = {"discount": None, "quantity": 4, "tags": ["a", "b"]}
    assert eval(code, {"__builtins__": {"len": len}}, {"msg": msg}) == 4.0  # noqa: S307 - test oracle only


def test_fields_used_are_listed():
    assert compile_expression("quantity * unit_price > 3", ENV).fields == ("quantity", "unit_price")


REJECTIONS = [
    # (expression, code, words in the message or fix)
    ("quantity +", "AC200", "invalid expression"),
    ("quantity ==", "AC200", "invalid expression"),
    ("__import__('os')", "AC201", "starts with '_'"),
    ("quantity.__class__", "AC201", "starts with '_'"),
    ("name.__class__.__mro__", "AC201", "starts with '_'"),
    ("_secret", "AC201", "starts with '_'"),
    ("name.lower()", "AC201", "only plain function calls"),
    ("name.upper", "AC201", "on a value of type string"),
    ("lambda: 1", "AC201", "lambda"),
    ("[x for x in tags]", "AC201", "comprehension"),
    ("tags[0]", "AC201", "indexing"),
    ("f'{name}'", "AC201", "f-string"),
    ("(y := 1)", "AC201", "assignment"),
    ("{'a': 1}", "AC201", "dict literal"),
    ("quantity ~ 1", "AC200", "invalid"),
    ("~quantity", "AC201", "operator ~"),
    ("quantity << 2", "AC201", "LShift"),
    ("name is 'x'", "AC201", "'is' only compares with None"),
    ("discount == None", "AC201", "using 'is'"),
    ("round(x=1)", "AC201", "keyword"),
    ("max(*tags)", "AC201", "keyword or *"),
    ("['a', name]", "AC201", "list items must be literals"),
    ("qantity * 2", "AC202", "did you mean 'quantity'?"),
    ("customer.tierr", "AC202", "did you mean 'tier'?"),
    ("quantity + name", "AC203", "'+' between integer and string"),
    ("name * 3", "AC203", "'*' between string and integer"),
    ("discount * 2", "AC203", "may be missing"),
    ("discount > 1", "AC203", "may be missing"),
    ("vip and quantity", "AC203", "'and'/'or' operand"),
    ("not quantity", "AC203", "'not' applied"),
    ("-name", "AC203", "sign applied"),
    ("name == 1", "AC203", "always false"),
    ("name < 1", "AC203", "ordering comparison"),
    ("quantity in ['a']", "AC203", "'in' between"),
    ("1 if quantity else 2", "AC203", "condition of 'if'"),
    ("1 if vip else 'x'", "AC203", "branches"),
    ("['a', 1]", "AC203", "mixes types"),
    ("lower(quantity)", "AC203", "lower() applied"),
    ("abs(discount)", "AC203", "coalesce"),
    ("9" * 20, "AC204", "integer literal too large"),
    ("'" + "x" * 1001 + "'", "AC204", "string literal"),
    ("2 ** quantity", "AC204", "exponent"),
    ("2 ** 100", "AC204", "exponent"),
    ("1e999", "AC204", "not finite"),
    ("(" * 300 + "1" + ")" * 300, "AC204", "nested"),
    (" + ".join(["1"] * 300), "AC204", "syntax nodes"),
    ("[" + ", ".join(["1"] * 101) + "]", "AC204", "list literal"),
    ("x" * 2001, "AC204", "characters long"),
    ("round(unit_price, quantity)", "AC206", "without declared bounds"),
    ("round(unit_price, 16)", "AC206", "digits 16 out of range"),
    ("round(unit_price, -16)", "AC206", "digits -16 out of range"),
    ("round(unit_price, quantity - 1)", "AC206", "without declared bounds"),
    ("round(unit_price, customer.tier)", "AC206", "minimum: -15"),
    ("eval('1')", "AC205", "function 'eval' is not allowed"),
    ("open('/etc/passwd')", "AC205", "not allowed"),
    ("getattr(name, 'x')", "AC205", "not allowed"),
    ("count()", "AC205", "aggregates belong in an aggregator"),
    ("lower(name, name)", "AC205", "takes 1..1 arguments"),
    ("lowr(name)", "AC205", "did you mean 'lower'?"),
]


@pytest.mark.parametrize(("text", "code", "words"), REJECTIONS, ids=[r[0][:30] for r in REJECTIONS])
def test_rejections_have_a_code_and_a_reason(text, code, words):
    with pytest.raises(ExprError) as info:
        compile_expression(text, ENV)
    error = info.value
    assert error.code == code
    assert words in f"{error.message} | {error.fix}"
    assert error.fix or error.expected


def test_conditions_must_be_boolean():
    with pytest.raises(ExprError, match="condition has type integer"):
        compile_expression("quantity", ENV, want="boolean")


def test_aggregates():
    avg = compile_aggregate("avg(unit_price * quantity)", ENV)
    assert (avg.function, avg.type.kind) == ("avg", "number")
    assert avg.argument.python == "msg['unit_price'] * msg['quantity']"
    assert compile_aggregate("count()", ENV).type == INTEGER
    assert compile_aggregate("min(name)", ENV).type == STRING
    for bad, code in [
        ("sum(name)", "AC203"),
        ("count(quantity)", "AC205"),
        ("avg(1) + 1", "AC205"),
        ("median(quantity)", "AC205"),
        ("sum(discount)", "AC203"),
    ]:
        with pytest.raises(ExprError) as info:
            compile_aggregate(bad, ENV)
        assert info.value.code == code, bad


def test_expression_errors_point_inside_the_yaml_scalar(arch):
    text = (EXAMPLE / "architecture.yaml").read_text().replace('"total >= 100"', '"total >= 100 and qty > 1"')
    (diag,) = only(compile_text(text), "AC202")
    line = text.splitlines()[diag.line - 1]
    assert line[diag.col - 1 :].startswith("qty > 1")


def test_blueprint_expression_errors_use_the_expression_codes(arch):
    component(arch, "pricer")["logic"]["set"]["total"] = "quantty * unit_price"
    assert "did you mean" in only(compile_data(arch), "AC202")[0].fix
    component(arch, "pricer")["logic"]["set"]["total"] = "order_id"
    assert "'total' is number but the expression is string" in only(compile_data(arch), "AC203")[0].message
    component(arch, "pricer")["logic"]["set"]["total"] = "__import__('os').system('x')"
    assert only(compile_data(arch), "AC201")


def test_binding_conditions_are_checked(arch):
    arch["bindings"][2]["condition"] = "total > 'x'"
    assert "ordering comparison" in only(compile_data(arch), "AC203")[0].message
    arch["bindings"][2]["condition"] = "total > 1000"
    result = compile_data(arch)
    assert result.ir is not None
    condition = result.ir.bindings[2].condition
    assert condition is not None and condition.python == "msg['total'] > 1000"


def test_round_digits_must_be_bounded(arch):
    bounded = {
        "digits": Type("integer", minimum=0, maximum=4),
        "wide": Type("integer", minimum=0, maximum=99),
    }
    env = {**ENV, **bounded, "maybe": Type("integer", optional=True, minimum=0, maximum=2)}
    assert (
        compile_expression("round(unit_price, digits)", env).python
        == "round(msg['unit_price'], msg['digits'])"
    )
    assert compile_expression("round(unit_price, -15)", env).type.kind == "number"
    for text, words in [
        ("round(unit_price, wide)", "bounded to 0..99"),
        ("round(unit_price, maybe)", "missing"),
    ]:
        with pytest.raises(ExprError, match=words) as info:
            compile_expression(text, env)
        assert info.value.code == "AC206"
    # in a blueprint: the schema's minimum/maximum are the bounds, the error points at the digits
    component(arch, "pricer")["logic"]["set"]["total"] = "round(unit_price, quantity)"
    (diag,) = only(compile_data(arch), "AC206")
    assert "bounded to 1..100000" in diag.message and "maximum: 15" in diag.fix
    arch["schemas"]["Order"]["fields"]["places"] = {"type": "integer", "minimum": -2, "maximum": 6}
    for example in component(arch, "pricer")["examples"]:
        example["in"]["places"] = 2
    arch["schemas"]["PricedOrder"]["fields"]["places"] = {"type": "integer", "required": False}
    component(arch, "pricer")["logic"]["set"]["total"] = "round(quantity * unit_price, places)"
    result = compile_data(arch)
    assert [d for d in result.diagnostics if d.is_error] == [] and result.ir is not None


def test_round_digit_errors_point_at_the_digits():
    text = (EXAMPLE / "architecture.yaml").read_text()
    text = text.replace('"quantity * unit_price"', '"round(unit_price, quantity)"')
    (diag,) = only(compile_text(text), "AC206")
    line = text.splitlines()[diag.line - 1]
    assert line[diag.col - 1 :].startswith("quantity)")
