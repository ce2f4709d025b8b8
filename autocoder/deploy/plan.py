"""The deployment plan: the part of the IR the deployment artifacts render, nothing more.

Manifests depend on this file only (written when its bytes change), so a change to one
component's logic leaves the plan's bytes, and therefore every manifest, untouched.

The plan itself is built from generated/ir.deploy.json, the IR cut down to what build_plan
reads (deploy/plan_input.py), so a logic edit stops at `ir`.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

PORT = 8000
UID = 10001
DATA_DIR = "/data"
DEFAULT_CPU = "250m"
DEFAULT_MEMORY = "256Mi"


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretPlan(Frozen):
    name: str
    keys: list[str]


class KeyRef(Frozen):
    name: str
    key: str


class IngressPlan(Frozen):
    host: str
    tls_secret: str | None
    ingress_class: str | None


class AlertPlan(Frozen):
    component: str
    p95_ms: float


class SuppressionPlan(Frozen):
    rule: str
    reason: str


class EnvironmentPlan(Frozen):
    """One environment's overlay: what it changes in the base (None: unchanged)."""

    name: str
    namespace: str
    replicas: int | None = None
    cpu: str | None = None
    memory: str | None = None
    host: str | None = None
    image_tag: str | None = None
    env: dict[str, str] = {}


class Plan(Frozen):
    """Everything a deployment artifact may show; every string here is data from the
    blueprint, already constrained by its model, and reaches files only through YAML/JSON
    serialisation (never pasted into text)."""

    system: str
    name: str  # the system as a Kubernetes name
    version: str
    environment: str
    namespace: str
    image: str
    image_repository: str
    image_tag: str
    image_digest: str | None
    base_image: str
    base_digest: str | None
    port: int = PORT
    uid: int = UID
    replicas: int
    cpu: str
    memory: str
    backend: Literal["sqlite", "postgres"]
    data_dir: str = DATA_DIR
    dsn_secret: KeyRef | None
    secrets: list[SecretPlan]
    env: dict[str, str]
    ingress: IngressPlan | None
    metrics: bool
    metrics_auth: bool
    otlp_endpoint: str | None
    log_level: str
    egress_ports: list[int]
    alerts: list[AlertPlan]
    runtime_version: str
    suppressions: list[SuppressionPlan]
    environments: list[EnvironmentPlan] = []  # `environment` first, then `environments` by name


def k8s_name(name: str) -> str:
    """lower_snake blueprint names as Kubernetes names (`_` is not allowed there)."""
    return re.sub(r"-+$", "", name.replace("_", "-")) or "system"


def _url_port(url: str) -> int:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return port or (443 if parts.scheme == "https" else 80)


def _resources(ir: dict[str, Any]) -> tuple[str, str]:
    """One pod runs every component: it gets the largest request any component declares
    (deployment.yaml's resources, else policy.resources, else a small default)."""
    from autocoder.analysis.deployment import cpu_millis, memory_bytes

    declared = [c["deployment"]["resources"] for c in ir["components"] if c["deployment"]["resources"]]
    if not declared and ir["policy"].get("resources"):
        declared = [ir["policy"]["resources"]]
    if not declared:
        return DEFAULT_CPU, DEFAULT_MEMORY
    cpu = max((r["cpu"] for r in declared), key=cpu_millis)
    memory = max((r["memory"] for r in declared), key=memory_bytes)
    return cpu, memory


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _namespace(system: str, environment: str) -> str:
    return k8s_name(f"{system}-{environment}")[:63].rstrip("-")


def _environments(system: str, dep: dict[str, Any]) -> list[EnvironmentPlan]:
    declared = dep.get("environments") or {}
    names = [dep["environment"], *sorted(n for n in declared if n != dep["environment"])]
    plans = []
    for name in names:
        env = declared.get(name) or {}
        resources = env.get("resources") or {}
        plans.append(
            EnvironmentPlan(
                name=name,
                namespace=_namespace(system, name),
                replicas=env.get("replicas"),
                cpu=resources.get("cpu"),
                memory=resources.get("memory"),
                host=env.get("host"),
                image_tag=env.get("image_tag"),
                env={k: _env_text(v) for k, v in sorted((env.get("env") or {}).items())},
            )
        )
    return plans


def build_plan(ir: dict[str, Any], runtime_version: str) -> Plan:
    dep = ir["deployment"]
    system = ir["system"]["name"]
    name = k8s_name(system)
    image = dep.get("image") or {}
    store = dep["store"]
    obs = dep["observability"]
    webhooks = [
        c["config"]["url"]
        for c in ir["components"]
        if c["kind"] == "sink" and c["config"].get("target") == "webhook" and c["config"].get("url")
    ]
    ports = {_url_port(url) for url in webhooks}
    if obs.get("otlp_endpoint"):
        ports.add(_url_port(obs["otlp_endpoint"]))
    replicas = max((c["deployment"]["replicas"] for c in ir["components"]), default=1)
    if store["backend"] == "sqlite":
        replicas = min(replicas, 1)  # one process owns the database file (AC111/AC128)
    cpu, memory = _resources(ir)
    ingress = dep.get("ingress")
    repository = image.get("repository", system)
    tag = image.get("tag", ir["system"]["version"])
    return Plan(
        system=system,
        name=name,
        version=ir["system"]["version"],
        environment=dep["environment"],
        namespace=_namespace(system, dep["environment"]),
        image=f"{repository}:{tag}",
        image_repository=repository,
        image_tag=tag,
        image_digest=image.get("digest"),
        base_image=f"{image.get('base', 'python')}:{image.get('base_tag', '3.11-slim-bookworm')}",
        base_digest=image.get("base_digest"),
        replicas=replicas,
        cpu=cpu,
        memory=memory,
        backend=store["backend"],
        dsn_secret=KeyRef(**store["dsn_secret"]) if store.get("dsn_secret") else None,
        secrets=[SecretPlan(name=s["name"], keys=sorted(s["keys"])) for s in dep["secrets"]],
        env={k: _env_text(v) for k, v in sorted(dep["env"].items())},
        ingress=(
            IngressPlan(
                host=ingress["host"], tls_secret=ingress.get("tls_secret"), ingress_class=ingress.get("class")
            )
            if ingress
            else None
        ),
        metrics=obs["metrics"],
        metrics_auth=obs["metrics_auth"],
        otlp_endpoint=obs.get("otlp_endpoint"),
        log_level=obs["log_level"],
        egress_ports=sorted(ports),
        alerts=[AlertPlan(component=c["name"], p95_ms=c["budget"]["p95_ms"]) for c in ir["components"]],
        runtime_version=runtime_version,
        suppressions=[SuppressionPlan(**s) for s in dep.get("suppressions", [])],
        environments=_environments(system, dep),
    )
