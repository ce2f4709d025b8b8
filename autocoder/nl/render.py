"""A draft rendered to blueprint YAML and requirements.json, deterministically.

Keys come in the blueprint models' field order (unknown keys last, sorted: the compiler
reports them); values are written by yaml.safe_dump, so any text from the model is a quoted
YAML string. Comments name requirement ids only (`# serves: R1, R3`): ids are constrained by
the draft model, and nothing else of the draft ever reaches a comment.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import yaml

from autocoder.blueprint.models import Architecture, ComponentBase, Deployment, Policy
from autocoder.canonical import canonical_json
from autocoder.nl.draft import Draft

HEADER = (
    "# Written by `autocoder new` from a description; check it with `autocoder check`.\n"
    "# `# serves:` comments name the requirements (see requirements.json) each part addresses.\n"
)
COMPONENT_ORDER = ["name", "kind", *[k for k in ComponentBase.model_fields if k != "name"], "config", "logic"]


def _ordered(data: dict[str, Any], order: list[str]) -> dict[str, Any]:
    known = [k for k in order if k in data]
    return {**{k: data[k] for k in known}, **{k: data[k] for k in sorted(data) if k not in order}}


def _fields(model: type[Any]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


class _Dumper(yaml.SafeDumper):
    """safe_dump with every multi-line string double-quoted on one line (`\\n` escapes): no
    line of the model's text can start a line of the file, where it would read as a comment."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if "\n" in value or "\r" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _dump(value: Any, indent: int = 0) -> str:
    text = yaml.dump(
        value, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=10**9, default_flow_style=False
    )
    return "".join(" " * indent + line + "\n" for line in text.splitlines())


def _comment(ids: list[str] | None, indent: int) -> str:
    return f"{' ' * indent}# serves: {', '.join(ids)}\n" if ids else ""


def _id_key(rid: str) -> int:
    return int(rid[1:])


def serving(draft: Draft) -> dict[str, list[str]]:
    """target -> its requirement ids, each list sorted and without repeats."""
    return {target: sorted(set(ids), key=_id_key) for target, ids in draft.serves.items()}


def render_architecture(draft: Draft) -> str:
    serves = serving(draft)
    data = _ordered(draft.architecture or {}, _fields(Architecture))
    out = [HEADER]
    for key, value in data.items():
        if key == "components" and isinstance(value, list) and value:
            out.append("components:\n")
            for item in value:
                name = item.get("name") if isinstance(item, dict) else None
                ordered = _ordered(item, COMPONENT_ORDER) if isinstance(item, dict) else item
                out.append(_comment(serves.get(name) if isinstance(name, str) else None, 2))
                out.append(_dump([ordered], 2))
        elif key == "policy" and isinstance(value, dict) and value:
            out.append("policy:\n")
            for section, body in _ordered(value, _fields(Policy)).items():
                out.append(_comment(serves.get(f"policy.{section}"), 2))
                out.append(_dump({section: body}, 2))
        else:
            out.append(_dump({key: value}))
    return "".join(out)


def render_deployment(draft: Draft) -> str:
    serves = serving(draft)
    data = _ordered(draft.deployment or {}, _fields(Deployment))
    out = [HEADER]
    for key, value in data.items():
        out.append(_comment(serves.get(f"deployment.{key}"), 0))
        out.append(_dump({key: value}))
    return "".join(out)


def target_problems(draft: Draft) -> list[str]:
    """What is wrong with the draft's `serves` map: unknown targets or requirement ids."""
    arch = draft.architecture or {}
    components = arch.get("components")
    names = (
        {c.get("name") for c in components if isinstance(c, dict)} if isinstance(components, list) else set()
    )
    policy = arch.get("policy")
    policy = policy if isinstance(policy, dict) else {}
    known = {
        *[n for n in names if isinstance(n, str)],
        *[f"policy.{k}" for k in policy],
        *[f"deployment.{k}" for k in (draft.deployment or {})],
    }
    ids = {r.id for r in draft.requirements}
    problems = []
    for target, served in sorted(draft.serves.items()):
        if target not in known:
            problems.append(
                f"serves: '{target}' is not a component, a policy section (policy.<key>) or a "
                f"deployment key (deployment.<key>) of the draft"
            )
        unknown = sorted(set(served) - ids, key=_id_key)
        if unknown:
            problems.append(
                f"serves: '{target}' names requirement(s) not in `requirements`: {', '.join(unknown)}"
            )
    counts = Counter(r.id for r in draft.requirements)
    duplicates = sorted((rid for rid, n in counts.items() if n > 1), key=_id_key)
    if duplicates:
        problems.append(f"requirements: duplicate id(s) {', '.join(duplicates)}")
    return problems


def traceability(draft: Draft) -> dict[str, Any]:
    """requirements.json: each requirement with what addresses it, and those nothing does."""
    by_id: dict[str, list[str]] = {r.id: [] for r in draft.requirements}
    for target, ids in serving(draft).items():
        for rid in ids:
            by_id.setdefault(rid, []).append(target)
    requirements = [
        {"id": r.id, "kind": r.kind, "text": r.text, "addressed_by": sorted(by_id[r.id])}
        for r in sorted(draft.requirements, key=lambda r: _id_key(r.id))
    ]
    return {
        "requirements": requirements,
        "unaddressed": [r["id"] for r in requirements if not r["addressed_by"]],
    }


def traceability_json(draft: Draft) -> bytes:
    return canonical_json(traceability(draft))
