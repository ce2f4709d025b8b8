"""Checks of a model's body before it becomes code: it is untrusted input.

In order, each stopping at its first failures (the repair prompt quotes them): the body parses
as the body of the expected method; it stays inside the small language the prompt allows (no
imports, no dynamic code, no I/O builtins, no underscore names, so no reaching `os` through
`__class__.__mro__`); the rendered module passes the AST policy of the blueprint, ruff,
bandit and mypy; and the component's generated tests pass, in a child process on a temporary copy of
the package (untrusted code never runs inside the build process).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from autocoder.codegen.component import Function
from autocoder.codegen.paths import module_path, test_path, unit_test_deps
from autocoder.ir.models import Slice

FORBIDDEN_NAMES = frozenset(
    {
        "eval",
        "exec",
        "compile",
        "open",
        "input",
        "breakpoint",
        "exit",
        "quit",
        "help",
        "getattr",
        "setattr",
        "delattr",
        "globals",
        "locals",
        "vars",
        "dir",
        "memoryview",
        "classmethod",
        "staticmethod",
        "property",
        "super",
        "type",
        "object",
        "self",  # the component's internals (system, database) are not the logic's business
    }
)
TEST_TIMEOUT_S = 180


def with_body(function: Function, body: str) -> Function:
    return Function(function.name, function.params, function.returns, tuple(body.splitlines()))


def body_problems(function: Function, body: str) -> list[str]:
    """Parse and language checks of a body for `function` (cheap: run on every answer)."""
    source = f"def {function.name}(self, {function.params}) -> {function.returns}:\n"
    source += "".join(f"    {line}\n" for line in body.splitlines())
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        line = (exc.lineno or 2) - 1
        return [f"line {line} of the body: syntax error: {exc.msg}"]
    (definition,) = tree.body
    assert isinstance(definition, ast.FunctionDef)
    problems = []
    for node in ast.walk(definition):
        where = f"line {getattr(node, 'lineno', 2) - 1} of the body"
        if isinstance(node, ast.Import | ast.ImportFrom):
            problems.append(f"{where}: import statements are not allowed (the template owns imports)")
        elif isinstance(node, ast.Global | ast.Nonlocal):
            problems.append(f"{where}: global/nonlocal is not allowed")
        elif isinstance(node, ast.Yield | ast.YieldFrom | ast.Await):
            problems.append(f"{where}: the method must return its result, not yield or await")
        elif isinstance(node, ast.Name) and (node.id in FORBIDDEN_NAMES or _private(node.id)):
            problems.append(f"{where}: the name {node.id!r} is not allowed")
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            problems.append(f"{where}: the attribute {node.attr!r} is not allowed")
        elif isinstance(node, ast.ClassDef):
            problems.append(f"{where}: class definitions are not allowed")
    if not any(isinstance(node, ast.Return) and node.value is not None for node in ast.walk(definition)):
        problems.append(f"the body never returns a value; it must return {function.returns}")
    return problems


def module_problems(
    files: dict[str, str],
    slice_: Slice,
    runtime_files: dict[str, str],
    function: Function,
    mypy_cache: Path,
) -> list[str]:
    """AST policy, ruff, bandit, mypy and the component's tests on the rendered files
    (`mypy_cache`: kept between attempts, so the runtime's types are read once)."""
    from autocoder.validate.ast_policy import check_source
    from autocoder.validate.lint import bandit_findings, ruff_findings

    system, name = slice_.system, slice_.component.name
    module, test = module_path(system, name), test_path(name)
    lines = _method_lines(files[module], function)
    findings = check_source(files[module], module, slice_.security_policy, system_code=True)
    if findings:
        return [f.format() for f in findings]
    with tempfile.TemporaryDirectory(prefix=f"autocoder-llm-{name}-") as tmp:
        src = Path(tmp) / "src"
        needed = {*unit_test_deps(system), "pyproject.toml"}
        for path, text in {**{p: runtime_files[p] for p in needed}, **files}.items():
            (src / path).parent.mkdir(parents=True, exist_ok=True)
            (src / path).write_text(text)
        # the model answers for its method; the lint tier judges the template's own lines
        found = ruff_findings(src, [module]) + bandit_findings(src, [module])
        lint = [f for f in found if f.severity == "error" and f.line in lines]
        if lint:
            return [f.format() for f in lint]
        types = _type_problems(src, module, mypy_cache)
        if types:
            return types
        return _test_problems(src, test, Path(tmp) / "data")


def _type_problems(src: Path, module: str, cache: Path) -> list[str]:
    """mypy's errors in the component's module, under the generated system's configuration:
    the template's own lines are type-clean, so each one comes from the model's body."""
    from autocoder.validate.types import typecheck_files

    return [f.format() for f in typecheck_files(src, [module], cache) if f.path.endswith(module)]


def _private(name: str) -> bool:
    """Underscore names reach interpreter internals (`__builtins__`, `__class__`); a lone `_`
    (the throwaway variable) does not."""
    return name.startswith("_") and name != "_"


def _method_lines(source: str, function: Function) -> range:
    """The lines of the model's method in the rendered module."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and node.name == function.name:
            return range(node.lineno, (node.end_lineno or node.lineno) + 1)
    return range(0)


def _test_problems(src: Path, test: str, data: Path) -> list[str]:
    env = {**os.environ, "DATA_DIR": str(data), "PYTHONPATH": str(src), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    try:
        run = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments, a generated test file
            [
                sys.executable,
                "-m",
                "pytest",
                test,
                "-q",
                "-x",
                "-p",
                "no:cacheprovider",
                "--no-header",
                "-rf",
            ],
            cwd=src,
            env=env,
            capture_output=True,
            text=True,
            timeout=TEST_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return [f"the component's tests did not finish within {TEST_TIMEOUT_S} s (an endless loop?)"]
    if run.returncode == 0:
        return []
    lines = [line for line in run.stdout.splitlines() if line.startswith(("FAILED", "ERROR", "E "))]
    return (lines or run.stdout.strip().splitlines()[-15:] or [run.stderr.strip()[-500:]])[:15]
