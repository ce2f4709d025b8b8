"""The AST policy check: rules/policy.yaml's `ast` rules and the blueprint's forbidden
imports and calls, applied to generated Python source. Rules are data; this module only
knows the kinds of match they use."""

from __future__ import annotations

import ast
import functools
import importlib.resources
import re
from typing import Any

import yaml

from autocoder.blueprint.models import SecurityPolicy
from autocoder.validate.findings import Finding


@functools.cache
def policy_rules() -> dict[str, Any]:
    text = importlib.resources.files("autocoder.rules").joinpath("policy.yaml").read_text()
    return yaml.safe_load(text)


def check_source(
    source: str, path: str, security_policy: SecurityPolicy, *, system_code: bool
) -> list[Finding]:
    """Findings of every AST rule in one file. `system_code` is False for tests, which may use
    what the system itself must not (the blueprint's forbidden imports and calls)."""
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as exc:
        return [
            Finding(path, exc.lineno or 1, exc.offset or 1, "policy", "AP000", f"does not parse: {exc.msg}")
        ]
    visitor = _Visitor(path, policy_rules()["ast"], security_policy if system_code else SecurityPolicy())
    visitor.visit(tree)
    return sorted(visitor.findings)


def _matches(name: str, patterns: list[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in patterns)


class _Visitor(ast.NodeVisitor):
    def __init__(self, path: str, rules: dict[str, Any], security: SecurityPolicy):
        self.path = path
        self.rules = rules
        self.forbidden_imports = list(security.forbidden_imports)
        self.forbidden_calls = list(security.forbidden_calls)
        self.aliases: dict[str, str] = {}
        self.findings: list[Finding] = []

    def report(self, node: ast.AST, code: str, message: str) -> None:
        self.findings.append(
            Finding(
                self.path,
                getattr(node, "lineno", 1),
                getattr(node, "col_offset", 0) + 1,
                "policy",
                code,
                message,
            )
        )

    # -- names

    def _dotted(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            base = self._dotted(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    # -- imports

    def _imported(self, node: ast.AST, module: str) -> None:
        for code, rule in self.rules.items():
            if rule.get("imports") and _matches(module, rule["imports"]):
                self.report(node, code, f"import of {module}: {rule['title']}")
        for forbidden in self.forbidden_imports:
            if _matches(module, [forbidden]):
                self.report(node, "AP010", f"import of {module} is forbidden by policy ({forbidden})")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.aliases[alias.asname or alias.name.split(".")[0]] = (
                alias.name if alias.asname else alias.name.split(".")[0]
            )
            self._imported(node, alias.name)
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module and node.level == 0:
            self._imported(node, node.module)
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                self.aliases[alias.asname or alias.name] = full
                for forbidden in self.forbidden_imports:
                    if "." in forbidden and full == forbidden:
                        self.report(node, "AP010", f"import of {full} is forbidden by policy")
        self.generic_visit(node)

    # -- calls

    def visit_Call(self, node: ast.Call) -> None:
        name = self._dotted(node.func)
        if name is not None:
            self._call(node, name)
        self.generic_visit(node)

    def _call(self, node: ast.Call, name: str) -> None:
        for code, rule in self.rules.items():
            if name in (rule.get("calls") or []):
                self.report(node, code, f"call of {name}: {rule['title']}")
            if name in (rule.get("shell_calls") or []) and _keyword_true(node, "shell"):
                self.report(node, code, f"{name}(..., shell=True): {rule['title']}")
            if rule.get("yaml_load") and name in ("yaml.load", "yaml.load_all") and not _safe_loader(node):
                self.report(node, code, f"{name} without SafeLoader: {rule['title']}")
            sql = rule.get("sql_format")
            if (
                sql
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in sql["methods"]
                and node.args
            ):
                if _formatted(node.args[0]):
                    self.report(node, code, f".{node.func.attr}() with a formatted string: {rule['title']}")
        if name in self.forbidden_calls:
            self.report(node, "AP011", f"call of {name} is forbidden by policy")
        for forbidden in self.forbidden_imports:
            if "." in forbidden and name == forbidden:
                self.report(node, "AP010", f"use of {name} is forbidden by policy")

    # -- secrets

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._secret(node, target, node.value)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self._secret(node, node.target, node.value)
        self.generic_visit(node)

    def _secret(self, node: ast.AST, target: ast.AST, value: ast.AST) -> None:
        name = (
            target.id
            if isinstance(target, ast.Name)
            else target.attr
            if isinstance(target, ast.Attribute)
            else None
        )
        if name is None or not (isinstance(value, ast.Constant) and isinstance(value.value, str)):
            return
        for code, rule in self.rules.items():
            spec = rule.get("secrets")
            if spec and re.search(spec["names"], name) and len(value.value) >= spec["min_length"]:
                self.report(node, code, f"'{name}' is assigned a literal: {rule['title']}")


def _keyword_true(node: ast.Call, keyword: str) -> bool:
    return any(
        k.arg == keyword and isinstance(k.value, ast.Constant) and k.value.value is True
        for k in node.keywords
    )


def _safe_loader(node: ast.Call) -> bool:
    loaders = [k.value for k in node.keywords if k.arg == "Loader"] + node.args[1:2]
    return any(isinstance(v, ast.Attribute | ast.Name) and "Safe" in ast.unparse(v) for v in loaders)


def _formatted(node: ast.AST) -> bool:
    if (
        isinstance(node, ast.JoinedStr)
        and node.values
        and any(isinstance(v, ast.FormattedValue) for v in node.values)
    ):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        return True
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"
