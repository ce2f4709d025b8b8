"""docs/blueprint.md documents every blueprint key, diagnostic code and expression function.

The keys are read from the pydantic models (autocoder/blueprint/models.py), walking every model
reachable from Architecture and Deployment, so adding a key to a model without documenting it
fails here. The complete example in the document must pass `check` cleanly.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path

import yaml
from conftest import compile_text
from pydantic import BaseModel

from autocoder.blueprint import models
from autocoder.expr.compiler import AGGREGATES, FUNCTIONS

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "blueprint.md"


def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def _models_in(annotation: object) -> list[type[BaseModel]]:
    """Every pydantic model class inside a type annotation (unions, lists, dicts, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found.extend(_models_in(arg))
    return found


def reachable_models() -> list[type[BaseModel]]:
    seen: list[type[BaseModel]] = []
    todo: list[type[BaseModel]] = [models.Architecture, models.Deployment]
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.append(model)
        for info in model.model_fields.values():
            todo.extend(_models_in(info.annotation))
    return seen


def documented_keys() -> dict[str, set[str]]:
    """Key as written in YAML (the alias when there is one) -> the models that have it."""
    keys: dict[str, set[str]] = {}
    for model in reachable_models():
        for name, info in model.model_fields.items():
            keys.setdefault(info.alias or name, set()).add(model.__name__)
    return keys


def test_the_walk_reaches_nested_and_per_kind_models():
    names = {m.__name__ for m in reachable_models()}
    expected = {
        "FieldSpec",
        "SchemaDef",
        "RateLimit",
        "Retry",
        "CircuitBreaker",
        "Timeout",
        "Example",
        "SetLogic",
        "RouterLogic",
        "Route",
        "AggregateLogic",
        "WhereLogic",
        "SourceConfig",
        "HttpRoute",
        "ApiEndpointConfig",
        "AggregatorConfig",
        "StoreConfig",
        "SinkConfig",
        "CustomComponent",
        "Binding",
        "Ingress",
        "SecretKeyRef",
        "Observability",
        "DeploymentPolicy",
    }
    assert expected <= names, expected - names
    keys = documented_keys()
    assert {"in", "from", "class"} <= set(keys)  # aliases, not the Python names
    assert not {"input", "source", "ingress_class"} & set(keys)


def test_every_blueprint_key_is_documented():
    text = doc_text()
    missing = {key: sorted(owners) for key, owners in documented_keys().items() if f"`{key}`" not in text}
    assert not missing, f"keys not documented (as `key`) in docs/blueprint.md: {missing}"


def test_every_component_kind_has_a_section():
    text = doc_text()
    for kind in models.COMPONENT_KINDS:
        assert f"### {kind}\n" in text, kind


def test_every_diagnostic_and_policy_code_is_documented():
    text = doc_text()
    diagnostics = yaml.safe_load((REPO / "rules" / "diagnostics.yaml").read_text())["diagnostics"]
    policy = yaml.safe_load((REPO / "rules" / "policy.yaml").read_text())
    codes = [*diagnostics, *policy["ast"], *policy["architecture"]]
    assert len(codes) > 50
    missing = [code for code in codes if not re.search(rf"^\| {code} \|", text, re.MULTILINE)]
    assert not missing, f"codes without a row in docs/blueprint.md: {missing}"


def test_every_expression_function_and_aggregate_is_documented():
    text = doc_text()
    missing = [name for name in [*FUNCTIONS, *AGGREGATES] if f"`{name}(" not in text]
    assert not missing, f"functions not documented in docs/blueprint.md: {missing}"


def _example(name: str) -> str:
    match = re.search(rf"<!-- example: {re.escape(name)} -->\n```yaml\n(.*?)```", doc_text(), re.DOTALL)
    assert match, f"docs/blueprint.md has no complete example of {name}"
    return match.group(1)


def test_the_complete_example_is_clean():
    result = compile_text(_example("architecture.yaml"), _example("deployment.yaml"))
    assert result.diagnostics == [], [str(d) for d in result.diagnostics]


def test_the_complete_example_uses_every_kind():
    arch = yaml.safe_load(_example("architecture.yaml"))
    kinds = {c["kind"] for c in arch["components"]}
    assert set(models.COMPONENT_KINDS) - {"custom"} <= kinds
