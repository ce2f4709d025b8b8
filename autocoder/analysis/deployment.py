"""deployment.yaml against the architecture: names, overrides, replicas, resources, secrets."""

from __future__ import annotations

import functools
import importlib.resources
import re
from typing import Any

import yaml

from autocoder.analysis.context import Context
from autocoder.blueprint.models import Model
from autocoder.diagnostics import did_you_mean, one_of

K8S_NAME_MAX = 63

# Keys whose values are credentials; values of this shape are credentials whatever the key.
_SECRET_KEY = re.compile(r"(pass(word|wd)?|secret|token|api[_-]?key|private[_-]?key|credential|auth)", re.I)
# `$NAME` / `${NAME}` in webhook headers: the runtime substitutes declared secrets only
# (autocoder_runtime.kinds.SECRET_REFERENCE; keep the two in step).
SECRET_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_SECRET_VALUE = re.compile(
    r"(-----BEGIN [A-Z ]*PRIVATE KEY-----|\bAKIA[0-9A-Z]{16}\b|\bsk-[A-Za-z0-9_-]{20,}|"
    r"\bgh[pousr]_[A-Za-z0-9]{30,}|\bxox[abposr]-[A-Za-z0-9-]{10,}|://[^/\s:@]+:[^/\s@]+@)"
)


@functools.cache
def budget_defaults() -> dict[str, Any]:
    text = importlib.resources.files("autocoder.rules").joinpath("budgets.yaml").read_text()
    return yaml.safe_load(text)


def check_deployment(ctx: Context) -> dict[str, dict[str, Any]]:
    """Check deployment.yaml; return per-component deployment facts merged with the architecture."""
    names = {c.name for c in ctx.arch.components}
    dep = ctx.deploy
    for section in ("replicas", "resources", "component_overrides"):
        allowed = names if section == "component_overrides" else names | {"default"}
        for name in getattr(dep, section):
            if name not in allowed and not ctx.broken.component(name):
                ctx.report_deploy(
                    (section, name),
                    "AC100",
                    f"unknown component '{name}' in {section}",
                    key=True,
                    expected=one_of(allowed),
                    fix=did_you_mean(name, allowed) or "use a component name from architecture.yaml",
                )
    _check_https(ctx)
    merged = _check_components(ctx)
    for name, env_value in ctx.deploy.env.items():
        if isinstance(env_value, str):
            _secret_check(ctx.report_deploy, ("env", name), name, env_value)
    _check_resources(ctx)
    _check_environments(ctx)
    return merged


def _check_components(ctx: Context) -> dict[str, dict[str, Any]]:
    """Each component's checks against deployment.yaml and its merged deployment facts. They
    read the component, deployment.yaml, the system's name and policy and rules/budgets.yaml
    (analysis.memo's key): with the memo, a component whose key is the last compile's takes its
    diagnostics and facts from it (_merge alone cost ~4 ms of an edit at 500 components)."""
    names = "system" not in ctx.broken.arch_sections  # else the system name failed validation
    # else which keys are declared is unknown
    secrets = "secrets" not in ctx.broken.deploy_sections
    declared = declared_secret_keys(ctx) if secrets else []
    stores = ctx.deploy.store.backend == "sqlite" and "store" not in ctx.broken.deploy_sections
    merged: dict[str, dict[str, Any]] = {}
    for i, comp in enumerate(ctx.arch.components):
        found = ctx.memo.deployed(i) if ctx.memo is not None else None
        if found is not None:
            ctx.diagnostics.extend(found.diagnostics)
            merged[comp.name] = found.merged
            continue
        first = len(ctx.diagnostics)
        if names:
            _check_name(ctx, i, comp)
        _check_secrets(ctx, i, comp)
        if secrets:
            _check_api_key(ctx, i, comp, declared)
            _check_sink(ctx, i, comp, declared)
        facts = _merge(ctx, comp)
        if stores:
            _check_store(ctx, comp, facts["replicas"])
        merged[comp.name] = facts
        if ctx.memo is not None:
            ctx.memo.store_deployed(i, ctx.diagnostics[first:], facts)
    return merged


def _merge(ctx: Context, comp: Any) -> dict[str, Any]:
    dep = ctx.deploy
    override = dep.component_overrides.get(comp.name)
    capabilities = comp.capabilities.model_dump(mode="json")
    budget = comp.budget.model_dump(mode="json")
    if override is not None:  # the keys it sets replace the component's, each one whole
        if override.capabilities is not None:
            capabilities.update(_set_keys(override.capabilities))
        if override.budget is not None:
            budget.update(_set_keys(override.budget))
    if capabilities["rate_limit"] is None:
        capabilities["rate_limit"] = dict(budget_defaults()["default_rate_limit"])
    # the kind's default budget plus its opt-in capabilities', tightened by the component and
    # by the system-wide policy
    rules = budget_defaults()
    default_p95 = float(rules["p95_ms"][comp.kind]) + sum(
        float(cost) for cap, cost in rules["capability_p95_ms"].items() if capabilities.get(cap)
    )
    limits = [budget["p95_ms"], ctx.arch.policy.performance.p95_ms, default_p95]
    budget["p95_ms"] = min(x for x in limits if x is not None)
    resources = dep.resources.get(comp.name) or dep.resources.get("default")
    return {
        "replicas": dep.replicas.get(comp.name, dep.replicas.get("default", 1)),
        "resources": resources.model_dump(mode="json") if resources else None,
        "capabilities": capabilities,
        "budget": budget,
    }


def _set_keys(model: Model) -> dict[str, Any]:
    """The top-level keys set in `model`, each complete with its defaults: an override of
    `retry: {max_attempts: 2}` is a whole retry policy in the IR, not a fragment of one."""
    data = model.model_dump(mode="json")
    return {key: data[key] for key in model.model_fields_set}


def _check_store(ctx: Context, comp: Any, replicas: int) -> None:
    """AC111, AC129: a second replica of a store or an aggregator on SQLite."""
    if comp.kind == "store" and replicas > 1:
        key = comp.name if comp.name in ctx.deploy.replicas else "default"
        ctx.report_deploy(
            ("replicas", key),
            "AC111",
            f"store '{comp.name}' uses embedded SQLite but would run {replicas} replicas",
            expected="1 replica for an SQLite store",
            fix=f"set `replicas: {{{comp.name}: 1}}` or `store: {{backend: postgres, ...}}`",
        )
    if comp.kind == "aggregator" and replicas > 1:
        key = comp.name if comp.name in ctx.deploy.replicas else "default"
        ctx.report_deploy(
            ("replicas", key),
            "AC129",
            f"aggregator '{comp.name}' keeps its windows in SQLite but would run {replicas} replicas: "
            "each replica would fold its own share of the messages into its own windows",
            expected="1 replica, or the state in PostgreSQL",
            fix=f"set `replicas: {{{comp.name}: 1}}` or `store: {{backend: postgres, ...}}`",
        )


_CPU = re.compile(r"^(\d+(?:\.\d+)?)(m?)$")
_MEM_UNITS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def cpu_millis(text: str) -> float:
    number, milli = _CPU.match(text).groups()  # type: ignore[union-attr]
    return float(number) if milli else float(number) * 1000


def memory_bytes(text: str) -> int:
    match = re.match(r"^(\d+)([A-Za-z]*)$", text)
    assert match is not None
    return int(match.group(1)) * _MEM_UNITS[match.group(2)]


def _check_resources(ctx: Context) -> None:
    limit = ctx.arch.policy.resources
    if limit is None:
        return
    for name, res in sorted(ctx.deploy.resources.items()):
        if cpu_millis(res.cpu) > cpu_millis(limit.cpu):
            ctx.report_deploy(
                ("resources", name, "cpu"),
                "AC122",
                f"cpu {res.cpu} for '{name}' is above the policy limit {limit.cpu}",
                expected=f"at most {limit.cpu}",
                fix=f"lower it to {limit.cpu} or raise policy.resources",
            )
        if memory_bytes(res.memory) > memory_bytes(limit.memory):
            ctx.report_deploy(
                ("resources", name, "memory"),
                "AC122",
                f"memory {res.memory} for '{name}' is above the policy limit {limit.memory}",
                expected=f"at most {limit.memory}",
                fix=f"lower it to {limit.memory} or raise policy.resources",
            )


def _check_environments(ctx: Context) -> None:
    """Each overlay of `environments`: no second replica on SQLite (AC130), a host only with
    an ingress to put it on (AC131), resources within policy (AC122), no credentials in its
    env (AC110)."""
    dep = ctx.deploy
    limit = ctx.arch.policy.resources
    for name, env in sorted(dep.environments.items()):
        where = ("environments", name)
        if env.replicas is not None and env.replicas > 1 and dep.store.backend == "sqlite":
            ctx.report_deploy(
                (*where, "replicas"),
                "AC130",
                f"environment '{name}' would run {env.replicas} replicas of a system whose database is "
                "an SQLite file: one process owns that file",
                expected="replicas: 1 on SQLite",
                fix="remove `replicas` from this environment, or use `store: {backend: postgres, ...}`",
            )
        if env.host is not None and dep.ingress is None:
            ctx.report_deploy(
                (*where, "host"),
                "AC131",
                f"environment '{name}' sets the ingress host {env.host}, but there is no `ingress`",
                expected="an `ingress: {host: ...}` block for the environments to change",
                fix=f"add `ingress: {{host: {env.host}}}` to deployment.yaml, or remove this `host`",
            )
        if limit is not None and env.resources is not None:
            for part, size in (("cpu", cpu_millis), ("memory", memory_bytes)):
                value, most = getattr(env.resources, part), getattr(limit, part)
                if size(value) > size(most):
                    ctx.report_deploy(
                        (*where, "resources", part),
                        "AC122",
                        f"{part} {value} for environment '{name}' is above the policy limit {most}",
                        expected=f"at most {most}",
                        fix=f"lower it to {most} or raise policy.resources",
                    )
        for key, value in env.env.items():
            if isinstance(value, str):
                _secret_check(ctx.report_deploy, (*where, "env", key), key, value)


def _check_https(ctx: Context) -> None:
    dep = ctx.deploy
    if dep.policy.security.require_https and dep.ingress is not None and dep.ingress.tls_secret is None:
        ctx.report_deploy(
            ("ingress",),
            "AC123",
            "ingress has no tls_secret but policy requires HTTPS",
            expected="ingress.tls_secret",
            fix="add `tls_secret: <secret name>` to ingress",
        )


def _check_name(ctx: Context, i: int, comp: Any) -> None:
    system = ctx.arch.system.name.replace("_", "-")
    full = f"{system}-{comp.name.replace('_', '-')}"
    if len(full) > K8S_NAME_MAX:
        ctx.report(
            ("components", i, "name"),
            "AC124",
            f"'{full}' ({len(full)} characters) is too long for a Kubernetes name",
            expected=f"system and component names of at most {K8S_NAME_MAX - 1} characters together",
            fix="shorten the component or system name",
        )


def _check_secrets(ctx: Context, i: int, comp: Any) -> None:
    """AC110: credentials written in plain config instead of deployment secrets (deployment.yaml's
    env: check_deployment)."""
    config = comp.config if isinstance(comp.config, dict) else comp.config.model_dump(mode="json")
    for path, key, value in _strings(config, ("components", i, "config")):
        _secret_check(ctx.report, path, key, value)


def declared_secret_keys(ctx: Context) -> list[str]:
    """Every env key deployment.yaml declares under `secrets:` (what the runtime may read)."""
    return sorted({key for secret in ctx.deploy.secrets for key in secret.keys})


def _secret_expected(declared: list[str]) -> str:
    return one_of(declared) if declared else "a key listed under deployment.yaml `secrets:`"


def _declare_hint(ctx: Context, key: str) -> str:
    """The `secrets:` entry that would declare `key`, for a fix text."""
    name = f"{ctx.arch.system.name.replace('_', '-')}-secrets"
    return f"declare it in deployment.yaml: `secrets: [{{name: {name}, keys: [{key}]}}]`"


def _check_api_key(ctx: Context, i: int, comp: Any, declared: list[str]) -> None:
    """AC126: an explicit `security.api_key_env` names a key declared in deployment secrets
    (the ingress compares X-API-Key with that env var: `HOME` or `PATH` would be a key anyone
    can guess). The implicit default, API_KEY, is not checked: starter projects rely on it."""
    env = comp.security.api_key_env
    if env is None or env in declared:
        return
    hint = did_you_mean(env, declared)
    ctx.report(
        ("components", i, "security", "api_key_env"),
        "AC126",
        f"api_key_env '{env}' of '{comp.name}' is not a key declared in deployment.yaml secrets",
        expected=_secret_expected(declared),
        fix=f"{hint} Or {_declare_hint(ctx, env)}" if hint else _declare_hint(ctx, env),
    )


def _check_sink(ctx: Context, i: int, comp: Any, declared: list[str]) -> None:
    """AC127: webhook header references name declared secrets; AC128: a file sink's path stays
    inside the data directory."""
    if comp.kind != "sink":
        return
    cpath = ("components", i, "config")
    for header, value in (comp.config.headers or {}).items():
        for match in SECRET_REFERENCE.finditer(value):
            name = match.group(1) or match.group(2)
            if name in declared:
                continue
            hint = did_you_mean(name, declared)
            ctx.report(
                (*cpath, "headers", header),
                "AC127",
                f"header '{header}' of '{comp.name}' refers to {match.group(0)}, which is not a key "
                "declared in deployment.yaml secrets (the runtime would send it as literal text)",
                expected=_secret_expected(declared),
                fix=f"{hint} Or {_declare_hint(ctx, name)}" if hint else _declare_hint(ctx, name),
            )
    if comp.config.path is not None:
        problem = _unsafe_relative_path(comp.config.path)
        if problem:
            ctx.report(
                (*cpath, "path"),
                "AC128",
                f"file sink '{comp.name}' path {comp.config.path[:100]!r} {problem}",
                expected="a relative file path inside the data directory, e.g. out/orders.jsonl",
                fix="write the path relative to DATA_DIR, without `..`, a leading `/` or a drive",
            )


def _unsafe_relative_path(path: str) -> str:
    """Why `path` could leave the directory it is relative to ('' when it cannot)."""
    if any(ord(ch) < 32 or ch == "\x7f" for ch in path):
        return "contains a control character"
    if path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", path):
        return "is absolute"
    parts = re.split(r"[/\\]", path)
    if ".." in parts:
        return "goes up with `..`"
    if parts[-1] in ("", "."):
        return "names a directory, not a file"
    return ""


def _strings(data: Any, path: tuple, key: str = "") -> list[tuple[tuple, str, str]]:
    if isinstance(data, dict):
        return [s for k, v in data.items() for s in _strings(v, (*path, k), str(k))]
    if isinstance(data, list):
        return [s for j, v in enumerate(data) for s in _strings(v, (*path, j), key)]
    return [(path, key, data)] if isinstance(data, str) else []


def _secret_check(report: Any, path: tuple, key: str, value: str) -> None:
    looks_secret = bool(_SECRET_VALUE.search(value))
    named_secret = (
        bool(_SECRET_KEY.search(key))
        and len(value) >= 4
        and not value.startswith("${")
        and not SECRET_REFERENCE.search(value)  # `Bearer $TOKEN`: the secret comes from the env
    )
    if looks_secret or named_secret:
        what = "a credential" if looks_secret else f"a value for '{key}'"
        report(
            path,
            "AC110",
            f"{what} is written in plain text",
            expected="a secret reference, never the value",
            fix="list it under deployment.yaml `secrets: [{name: ..., keys: [...]}]`, read it from the env",
        )
