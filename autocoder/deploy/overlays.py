"""Kustomize overlays, one per environment: written as the difference between the base and the
documents the environment's own plan renders, and built back by our own code for validation.

kustomize is not a dependency (`kubectl kustomize` may be on a machine, or not), so an overlay
uses only the few features whose meaning is simple and that `build` below implements the way
kustomize does: `namespace` (every object's namespace, the Namespace's own name, the
ServiceAccount subjects of role bindings), `labels` (metadata labels only), extra `resources`,
and strategic-merge `patches` whose lists are either replaced whole or, for `containers`,
merged by name. A difference outside that subset is an OverlayError, never a wrong overlay.
The tests compare `build` with `kubectl kustomize` where kubectl is installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from autocoder.deploy.plan import EnvironmentPlan, IngressPlan, Plan

KUSTOMIZE_API = "kustomize.config.k8s.io/v1beta1"
# lists a strategic merge patch replaces whole (no patch merge key) that environments change
REPLACED_LISTS = {("spec", "rules"), ("spec", "tls")}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
_MISSING = object()


class OverlayError(Exception):
    """An environment changes something an overlay of this module cannot express."""


def environment_plan(plan: Plan, env: EnvironmentPlan) -> Plan:
    """The base plan as this environment runs it (in the base's namespace: the overlay's
    `namespace` moves everything)."""
    update: dict[str, Any] = {"environment": env.name}
    if env.replicas is not None:
        update["replicas"] = min(env.replicas, 1) if plan.backend == "sqlite" else env.replicas
    if env.cpu is not None and env.memory is not None:
        update |= {"cpu": env.cpu, "memory": env.memory}
    if env.host is not None and plan.ingress is not None:
        update["ingress"] = IngressPlan(
            host=env.host, tls_secret=plan.ingress.tls_secret, ingress_class=plan.ingress.ingress_class
        )
    if env.image_tag is not None:
        update |= {"image_tag": env.image_tag, "image": f"{plan.image_repository}:{env.image_tag}"}
    if env.env:
        update["env"] = {**plan.env, **env.env}
    return plan.model_copy(update=update)


def _key(doc: dict[str, Any]) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


def _target(doc: dict[str, Any]) -> dict[str, Any]:
    meta = {"name": doc["metadata"]["name"]}
    if "namespace" in doc["metadata"]:
        meta["namespace"] = doc["metadata"]["namespace"]
    return {"apiVersion": doc["apiVersion"], "kind": doc["kind"], "metadata": meta}


def diff(base: Any, env: Any, path: tuple[str, ...] = ()) -> Any:
    """A strategic merge patch turning `base` into `env` (_MISSING when they are equal)."""
    if base == env:
        return _MISSING
    if isinstance(base, dict) and isinstance(env, dict):
        patch = {key: None for key in base if key not in env}  # null deletes a key
        for key, value in env.items():
            part = diff(base[key], value, (*path, key)) if key in base else value
            if part is not _MISSING:
                patch[key] = part
        return patch
    if isinstance(base, list) and isinstance(env, list):
        if path[-1:] == ("containers",):
            return _diff_containers(base, env, path)
        if path[-2:] in REPLACED_LISTS:
            return env
        raise OverlayError(f"{'.'.join(path)}: a list an overlay would have to merge by key")
    return env


def _diff_containers(base: list[Any], env: list[Any], path: tuple[str, ...]) -> list[Any]:
    if [c["name"] for c in base] != [c["name"] for c in env]:
        raise OverlayError(f"{'.'.join(path)}: an environment with other containers")
    patch = []
    for old, new in zip(base, env, strict=True):
        part = diff(old, new, (*path, old["name"]))
        if part is not _MISSING:
            patch.append({"name": new["name"], **part})
    return patch


def render_overlay(
    base: dict[str, list[dict[str, Any]]],
    env_docs: dict[str, list[dict[str, Any]]],
    plan: Plan,
    env: EnvironmentPlan,
) -> dict[str, Any]:
    """file name under overlays/<env>/ -> its documents (the kustomization among them)."""
    base_by_key = {_key(d): d for docs in base.values() for d in docs}
    env_by_key = {_key(d): d for docs in env_docs.values() for d in docs}
    files: dict[str, list[dict[str, Any]]] = {}
    resources = ["../../base"]
    for name, docs in sorted(env_docs.items()):  # objects only this environment has
        added = [d for d in docs if _key(d) not in base_by_key]
        if added:
            files[name] = added
            resources.append(name)
    patches = []
    for key, doc in sorted(base_by_key.items()):
        if key not in env_by_key:
            patch: Any = {**_target(doc), "$patch": "delete"}
        else:
            patch = diff(doc, env_by_key[key])
            if patch is _MISSING:
                continue
            patch = {
                **_target(doc),
                **patch,
                "metadata": {**patch.get("metadata", {}), **_target(doc)["metadata"]},
            }
        name = f"patch-{key[0].lower()}-{key[1]}.yaml"
        files[name] = [patch]
        patches.append({"path": name})
    kustomization: dict[str, Any] = {
        "apiVersion": KUSTOMIZE_API,
        "kind": "Kustomization",
        "resources": resources,
        "namespace": env.namespace,
        "labels": [{"pairs": {"app.kubernetes.io/instance": f"{plan.name}-{env.name}"}}],
    }
    if patches:
        kustomization["patches"] = patches
    files["kustomization.yaml"] = [kustomization]
    return files


# --------------------------------------------------------------------------- build


def _load(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def build(folder: Path) -> list[dict[str, Any]]:
    """The documents `kustomize build folder` gives for the subset this module writes."""
    (kustomization,) = _load(folder / "kustomization.yaml")
    docs: list[dict[str, Any]] = []
    for resource in kustomization.get("resources", []):
        path = folder / resource
        docs += build(path) if path.is_dir() else _load(path)
    for entry in kustomization.get("patches", []):
        for patch in _load(folder / entry["path"]):
            docs = _apply(docs, patch)
    if "namespace" in kustomization:
        docs = [_set_namespace(d, kustomization["namespace"]) for d in docs]
    for label in kustomization.get("labels", []):
        for doc in docs:
            doc["metadata"]["labels"] = {**(doc["metadata"].get("labels") or {}), **label["pairs"]}
    return docs


def _apply(docs: list[dict[str, Any]], patch: dict[str, Any]) -> list[dict[str, Any]]:
    matched = [d for d in docs if _key(d) == _key(patch)]
    if len(matched) != 1:
        raise OverlayError(f"patch {_key(patch)} matches {len(matched)} objects")
    if patch.get("$patch") == "delete":
        return [d for d in docs if d is not matched[0]]
    merged = merge(matched[0], {k: v for k, v in patch.items() if k != "$patch"})
    return [merged if d is matched[0] else d for d in docs]


def merge(base: Any, patch: Any, path: tuple[str, ...] = ()) -> Any:
    """Strategic merge for the subset: maps merge (null deletes), `containers` merge by name,
    other lists are replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = merge(base[key], value, (*path, key)) if key in base else value
        return out
    if isinstance(base, list) and isinstance(patch, list) and path[-1:] == ("containers",):
        by_name = {c["name"]: c for c in patch}
        merged = [
            merge(c, by_name.pop(c["name"]), (*path, c["name"])) if c["name"] in by_name else c for c in base
        ]
        return merged + list(by_name.values())
    return patch


def _set_namespace(doc: dict[str, Any], namespace: str) -> dict[str, Any]:
    doc = {**doc, "metadata": dict(doc["metadata"])}
    if doc["kind"] == "Namespace":
        doc["metadata"]["name"] = namespace
    elif doc["kind"] not in CLUSTER_SCOPED:
        old = doc["metadata"].get("namespace")
        doc["metadata"]["namespace"] = namespace
        if doc["kind"] == "RoleBinding":
            doc["subjects"] = [
                {**s, "namespace": namespace}
                if s.get("kind") == "ServiceAccount" and s.get("namespace") in (None, old)
                else s
                for s in doc.get("subjects", [])
            ]
    return doc
