"""Item 3 of the foundation issue: every class of unreadable input gives a positioned error."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import EXAMPLE, compile_text, only

from autocoder.blueprint import source

ARCH = (EXAMPLE / "architecture.yaml").read_text()
DEPLOY = (EXAMPLE / "deployment.yaml").read_text()


def test_malformed_yaml_names_line_and_column():
    result = compile_text('schema_version: "1.0.0"\nsystem: {name: x\ncomponents: []\n')
    (diag,) = only(result, "AC001")
    assert diag.file == "architecture.yaml"
    assert diag.line == 3
    assert "YAML syntax error" in diag.message and diag.fix


def test_tab_indentation_is_reported_with_its_line():
    text = ARCH.replace("    kind: api_endpoint", "\tkind: api_endpoint")
    (diag,) = only(compile_text(text), "AC003")
    assert diag.line == ARCH.splitlines().index("    kind: api_endpoint           # ingress over HTTP") + 1
    assert "spaces" in diag.fix


def test_duplicate_keys_name_both_lines():
    text = 'schema_version: "1.0.0"\nsystem: {name: x}\nsystem: {name: y}\ncomponents: []\n'
    (diag,) = only(compile_text(text), "AC002")
    assert (diag.line, diag.col) == (3, 1)
    assert "first at line 2" in diag.message


def test_wrong_type_says_what_was_expected():
    text = ARCH.replace("quantity: {type: integer, minimum: 1,", 'quantity: {type: integer, minimum: "1",')
    (diag,) = only(compile_text(text), "AC011")
    assert "expected a number" in diag.format()
    assert "without quotes" in diag.fix


def test_empty_file():
    (diag,) = only(compile_text("# only a comment\n"), "AC004")
    assert "empty" in diag.message


def test_document_that_is_not_a_mapping():
    (diag,) = only(compile_text("- just\n- a list\n"), "AC004")
    assert "not a mapping" in diag.message


def test_missing_file(tmp_path):
    from autocoder.compile import compile_directory

    (tmp_path / "deployment.yaml").write_bytes((EXAMPLE / "deployment.yaml").read_bytes())
    (diag,) = only(compile_directory(tmp_path), "AC004")
    assert "architecture.yaml not found" in diag.message and "autocoder init" in diag.fix


def test_huge_file_is_refused_before_parsing():
    text = ARCH + "#" * (source.MAX_BYTES + 1)
    (diag,) = only(compile_text(text), "AC005")
    assert "bytes" in diag.message


def test_deep_nesting_is_refused():
    text = 'schema_version: "1.0.0"\nx: ' + "[" * 200 + "]" * 200 + "\n"
    (diag,) = only(compile_text(text), "AC005")
    assert "nest" in diag.message


def test_alias_bomb_is_bounded():
    lines = ['schema_version: "1.0.0"', "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    (diag,) = only(compile_text("\n".join(lines) + "\n"), "AC005")
    assert "too many nodes" in diag.message


def test_several_documents_and_odd_keys():
    assert only(compile_text(ARCH + "---\nx: 1\n"), "AC006")
    result = compile_text(ARCH.replace("system:", "? [a, b]\n: 1\nsystem:", 1))
    assert "plain string" in only(result, "AC006")[0].message
    result = compile_text(ARCH.replace("system:", "yes: 1\nsystem:", 1))
    assert "quote it" in only(result, "AC006")[0].fix


def test_merge_keys_are_refused():
    text = ARCH.replace("  PricedOrder:\n", "  PricedOrder:\n    <<: {description: x}\n")
    assert "merge keys" in only(compile_text(text), "AC006")[0].message


def test_unknown_key_suggests_the_right_one():
    text = ARCH.replace("    logic: {where:", "    logik: {where:")
    (diag,) = only(compile_text(text), "AC010")
    assert "unknown key 'logik'" in diag.message
    assert diag.fix == "did you mean 'logic'?"
    assert diag.line == ARCH.splitlines().index('    logic: {where: "total >= 100"}') + 1
    assert diag.col == 5


def test_misspelled_kind_suggests_the_kind():
    (diag,) = only(compile_text(ARCH.replace("kind: filter", "kind: filtr")), "AC013")
    assert diag.fix == "did you mean 'filter'?"


def test_missing_key():
    text = ARCH.replace("    config: {key: order_id}\n", "")
    (diag,) = only(compile_text(text), "AC012")
    assert "missing key 'config'" in diag.message


def test_bad_names_are_refused_with_the_rule():
    result = compile_text(ARCH.replace("name: pricer", "name: Pricer"))
    (diag,) = only(result, "AC013")
    assert "lower_snake_case" in diag.expected
    result = compile_text(ARCH.replace("name: pricer", "name: import"))
    assert "reserved" in only(result, "AC013")[0].message


def test_unsupported_schema_version():
    assert only(compile_text(ARCH.replace('"1.0.0"', '"2.0.0"', 1)), "AC014")
    (diag,) = only(compile_text(ARCH.replace('"1.0.0"', "1.0", 1)), "AC011")
    assert '"1.0.0"' in diag.fix
    assert only(compile_text(ARCH.replace('"1.0.0"', '"one"', 1)), "AC014")


def test_all_errors_of_a_file_come_in_one_run():
    text = ARCH.replace("kind: filter", "kind: filtr").replace("logic: {set:", "logik: {set:")
    text = text.replace("name: notifier", "name: Notifier")
    result = compile_text(text, 'schema_version: "1.0.0"\nreplicas: {default: two}\n')
    assert {"AC013", "AC010", "AC011"} <= {d.code for d in result.diagnostics}
    assert {d.file for d in result.diagnostics} == {"architecture.yaml", "deployment.yaml"}
    assert len(result.diagnostics) >= 4


def test_cli_exit_code_2_and_no_traceback(tmp_path):
    (tmp_path / "architecture.yaml").write_text("schema_version: [\n")
    (tmp_path / "deployment.yaml").write_text("\t- nope\n")
    run = subprocess.run(
        [sys.executable, "-m", "autocoder.cli", "check", str(tmp_path)], capture_output=True, text=True
    )
    assert run.returncode == 2
    assert "Traceback" not in run.stderr + run.stdout
    assert "architecture.yaml:" in run.stderr and "deployment.yaml:1:1" in run.stderr


def test_invalid_utf8():
    from autocoder.compile import compile_sources

    result = compile_sources(b"schema_version: \xff\n", (EXAMPLE / "deployment.yaml").read_bytes())
    assert "UTF-8" in only(result, "AC001")[0].message


def test_control_characters_are_reported():
    (diag,) = only(compile_text(ARCH.replace("system:", "sys\x00tem:", 1)), "AC001")
    assert "U+0000" in diag.message and diag.line == 4


NUMBERS = [
    (".inf", "not finite"),
    ("-.inf", "not finite"),
    (".nan", "not finite"),
    ("1.0e+400", "not finite"),
]
NUMBERS += [
    ("9" * 5000, "5000 characters"),
    (str(2**63), "signed 64-bit"),
    ("0x" + "f" * 17, "signed 64-bit"),
]


@pytest.mark.parametrize(
    ("number", "words"), NUMBERS, ids=["inf", "-inf", "nan", "1e400", "5000", "2**63", "hex"]
)
def test_AC007_numbers_out_of_range_in_architecture(number, words):
    # a default is free JSON: before, .inf reached the IR's content hash and 5000 digits
    # PyYAML's int(), both as tracebacks
    text = ARCH.replace("unit_price: {type: number,", f"unit_price: {{default: {number}, type: number,")
    result = compile_text(text)
    (diag,) = only(result, "AC007")
    assert (diag.file, diag.line) == ("architecture.yaml", 10)
    assert words in diag.message and "signed 64 bits" in diag.expected and "quote" in diag.fix
    assert result.ir is None


@pytest.mark.parametrize("number", [".inf", ".nan", "-.inf", "9" * 5000])
def test_AC007_numbers_out_of_range_in_deployment(number):
    deploy = DEPLOY.replace("env: {LOG_LEVEL: INFO}", f"env: {{LOG_LEVEL: INFO, LIMIT: [1, {number}]}}")
    (diag,) = only(compile_text(ARCH, deploy), "AC007")
    assert (diag.file, diag.line) == ("deployment.yaml", 10)
    assert diag.col == deploy.splitlines()[9].index(number) + 1


def test_integer_edge_forms_are_read_like_pyyaml_but_bounded():
    from autocoder.blueprint.source import INT_MAX, INT_MIN, parse_yaml

    text = f"a: {INT_MAX}\nb: {INT_MIN}\nc: 0x_ff\nd: 0b101\ne: 017\nf: 1:30\ng: -1_000\n"
    assert parse_yaml(text.encode(), "x.yaml").data == dict(
        a=INT_MAX, b=INT_MIN, c=255, d=5, e=15, f=90, g=-1000
    )
    bomb = "x: 1:" + ":".join(["59"] * 1_000_000) + "\n"  # base 60: minutes of bignum work for PyYAML
    result = compile_text(bomb)
    assert "outside the signed 64-bit range" in only(result, "AC007")[0].message


def test_values_with_explicit_tags_that_do_not_parse_are_diagnostics():
    for tag, value in (("int", "abc"), ("float", "abc"), ("timestamp", "yesterday"), ("int", "''")):
        text = ARCH.replace("maximum: 100000}", f"maximum: !!{tag} {value}}}")
        (diag,) = only(compile_text(text), "AC001")
        assert diag.line == 9 and f"as a YAML {tag}" in diag.message and f"!!{tag}" in diag.fix


def test_huge_version_and_quantity_numbers_are_diagnostics():
    text = ARCH.replace('"1.0.0"', '"' + "9" * 5000 + '.0.0"', 1)
    assert "is not supported" in only(compile_text(text), "AC014")[0].message
    deploy = DEPLOY.replace("memory: 256Mi", "memory: " + "9" * 5000 + "Mi")
    assert only(compile_text(ARCH, deploy), "AC013")


@pytest.mark.parametrize(
    ("number", "fix"),
    [
        ("1e6", "YAML reads 1e6 as text (its exponent needs a dot and a sign): 1.0e+6"),
        ("2.5E3", "YAML reads 2.5E3 as text (its exponent needs a dot and a sign): 2.5e+3"),
        ("1.0e999", "YAML reads 1.0e999 as text (its exponent needs a dot and a sign): a smaller number"),
        ('"100"', "write the number without quotes: 100"),
    ],
)
def test_a_number_yaml_reads_as_text_gets_a_fix_that_works(number, fix):
    """PyYAML (YAML 1.1) reads 1e6 as a string: "write it without quotes" was wrong advice for
    a value that had none."""
    text = ARCH.replace("maximum: 1000000}", f"maximum: {number}}}")
    (diag,) = only(compile_text(text), "AC011")
    assert diag.fix.startswith(fix)


def test_a_diagnostic_never_echoes_a_huge_value_whole():
    """A 5,000-character expression was printed whole in its AC013 line."""
    text = ARCH.replace('total: "quantity * unit_price"', 'total: "quantity * ' + "9" * 5000 + '"')
    (diag,) = only(compile_text(text), "AC013")
    assert len(diag.message) < 300 and "(5013 characters)" in diag.message
