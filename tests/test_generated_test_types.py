"""The shape of the generated tests that keeps the type tier cheap (validate/types.py), checked by a
real mypy run on the every-kind runtime fixture: each hypothesis strategy is one module constant
annotated `st.SearchStrategy[dict[str, Any]]`, each path test calls the runtime's `check_path`;
everything type-checks clean, and a wrong strategy or a wrong path datum is still an error."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

from autocoder.codegen.component import generate_component
from autocoder.codegen.provider import get_provider
from autocoder.codegen.system import generate_runtime
from autocoder.compile import compile_sources
from autocoder.validate.types import typecheck

FIXTURE = REPO / "tests" / "fixtures" / "runtime"
STRATEGY = "st.SearchStrategy[dict[str, Any]]"


def _render(src: Path) -> None:
    """The fixture's generated package and tests, as the gen tasks write them."""
    result = compile_sources(
        (FIXTURE / "architecture.yaml").read_bytes(), (FIXTURE / "deployment.yaml").read_bytes()
    )
    assert result.ir is not None, "\n".join(d.format() for d in result.diagnostics)
    files = generate_runtime(result.ir)
    for slice_ in result.slices.values():
        files.update(generate_component(slice_, get_provider("offline")))
    for name, text in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text, encoding="utf-8")


def _strategy_constants(tree: ast.Module) -> dict[str, ast.AnnAssign]:
    return {
        node.target.id: node
        for node in tree.body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None
    }


def _given_arguments(tree: ast.Module) -> list[ast.expr]:
    return [
        keyword.value
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        for decorator in node.decorator_list
        if isinstance(decorator, ast.Call) and ast.unparse(decorator.func) == "given"
        for keyword in decorator.keywords
    ]


def _splice(path: Path, node: ast.expr, text: str) -> int:
    """Replace `node`'s source in `path` with `text`; its line number."""
    assert node.end_lineno is not None and node.end_col_offset is not None
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    start = sum(len(line) for line in lines[: node.lineno - 1]) + node.col_offset
    end = sum(len(line) for line in lines[: node.end_lineno - 1]) + node.end_col_offset
    source = "".join(lines)
    path.write_text(source[:start] + text + source[end:], encoding="utf-8")
    return node.lineno


def test_strategies_are_annotated_constants_path_tests_call_check_path_and_mypy_still_sees_errors(tmp_path):
    src = tmp_path / "generated" / "src"
    _render(src)
    given = 0
    for test in sorted((src / "tests").glob("test_*.py")):
        tree = ast.parse(test.read_text(encoding="utf-8"))
        constants = _strategy_constants(tree)
        for argument in _given_arguments(tree):
            given += 1
            assert isinstance(argument, ast.Name), f"{test.name}: @given({ast.unparse(argument)})"
            assert ast.unparse(constants[argument.id].annotation) == STRATEGY, test.name
    assert given >= 8  # transformer, store (twice), aggregator (three times), api_endpoint, ...
    paths = sorted((src / "tests" / "paths").glob("test_*.py"))
    assert paths
    for test in paths:
        (function,) = [
            n for n in ast.parse(test.read_text(encoding="utf-8")).body if isinstance(n, ast.FunctionDef)
        ]
        assert [ast.unparse(s.value.func) for s in function.body if isinstance(s, ast.Expr)] == ["check_path"]
        assert len(function.body) == 1, test.name

    assert typecheck(src, "rtcheck", tmp_path / "cache") == []

    # the annotation is checked: a strategy of anything but dicts is an assignment error
    divide = src / "tests" / "test_divide.py"
    constant = next(iter(_strategy_constants(ast.parse(divide.read_text(encoding="utf-8"))).values()))
    assert constant.value is not None
    strategy_line = _splice(divide, constant.value, "st.integers()")
    # and so is every datum the path test hands to check_path
    path_test = paths[0]
    routes = _strategy_constants(ast.parse(path_test.read_text(encoding="utf-8")))["ROUTES"]
    assert routes.value is not None
    routes_line = _splice(path_test, routes.value, '[("POST", "/x", "api_key", 1)]')
    found = typecheck(src, "rtcheck", tmp_path / "cache")
    assert [(f.path, f.line, f.rule) for f in found] == [
        (f"generated/src/tests/paths/{path_test.name}", routes_line, "list-item"),
        ("generated/src/tests/test_divide.py", strategy_line, "assignment"),
    ]
