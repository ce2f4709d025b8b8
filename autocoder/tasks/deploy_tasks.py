"""doit tasks of the deployment stage: `deploy:<group>`, `sign` and `image`.

deploy:plan extracts what the artifacts render (routes, ports, resources, deployment.yaml) from
generated/ir.deploy.json, the IR's cut that `ir` rewrites only when the plan may change (a logic
edit does not run deploy:plan), into generated/deploy/plan.json, rewritten only when its bytes
change (md5 early cutoff: no manifest is rendered again). deploy:docker, deploy:compose and
deploy:k8s render from the plan; deploy:wheels builds the system's wheel from the generated
source (in process), deploy:runtime-wheel the runtime's (only when the runtime changes);
deploy:validate runs the offline validators. `sign` (the release step) and `image` are not
default tasks.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from doit.exceptions import TaskFailed

import autocoder
from autocoder.layout import DEPLOYMENT, GENERATED
from autocoder.tasks.compile_tasks import (
    PLAN_INPUT_FILE,
    blueprint_outline,
    clean_targets,
    fingerprint_file,
    project_dir,
    refuse_unsafe_output,
)

DEPLOYMENTS = "deployments"
STATE = f"{GENERATED}/deploy"
PLAN = f"{STATE}/plan.json"
RENDER_GROUPS = ("docker", "compose", "k8s")
RUNTIME_WHEEL = "runtime-wheel"
WHEEL_GROUPS = ("wheels", RUNTIME_WHEEL)  # the system's wheel; the runtime's and constraints.txt
VALIDATION_REPORT = f"{GENERATED}/reports/deploy-validation.json"


@functools.cache
def deploy_fingerprint() -> str:
    """Version and code of the deployment stage: a new renderer re-renders everything."""
    digest = hashlib.sha256(autocoder.__version__.encode())
    for path in sorted((Path(autocoder.__file__).parent / "deploy").glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def _stamp(group: str) -> str:
    return f"{STATE}/{group}.files.json"


def _fail(task: str, exc: Exception) -> TaskFailed:
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return TaskFailed(f"{task}: {detail}")


def write_group(directory: Path, group: str, files: dict[str, bytes]) -> None:
    """Write a group's files under deployments/ (atomically, only when changed), delete the
    files it rendered last time and no longer does, and record what it wrote in its stamp."""
    from autocoder.canonical import canonical_json
    from autocoder.fsutil import confined, write_if_changed

    stamp = confined(directory, Path(_stamp(group)))
    try:
        previous = set(json.loads(stamp.read_text()))
    except (OSError, ValueError, TypeError):
        previous = set()
    for rel, data in sorted(files.items()):
        write_if_changed(confined(directory, Path(DEPLOYMENTS, rel)), data)
    for rel in sorted(previous - set(files)):
        path = confined(directory, Path(DEPLOYMENTS, rel), "delete")
        if path.is_file():
            path.unlink()
    digests = {rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()}
    write_if_changed(stamp, canonical_json(digests))


def load_plan(directory: Path) -> Any:
    from autocoder.deploy.plan import Plan

    return Plan.model_validate_json((directory / PLAN).read_text())


def run_plan(directory: Path) -> TaskFailed | None:
    from autocoder.canonical import canonical_json
    from autocoder.deploy.plan import build_plan
    from autocoder.fsutil import confined, write_if_changed

    try:
        import autocoder_runtime

        ir = json.loads((directory / PLAN_INPUT_FILE).read_bytes())  # the IR's cut for the plan
        plan = build_plan(ir, autocoder_runtime.__version__)
        write_if_changed(confined(directory, Path(PLAN)), canonical_json(plan.model_dump(mode="json")))
    except (OSError, ValueError) as exc:
        return _fail("deploy:plan", exc)
    return None


def run_render(directory: Path, group: str) -> TaskFailed | None:
    from autocoder.deploy.render import GROUPS

    try:
        write_group(directory, group, GROUPS[group](load_plan(directory)))
    except (OSError, ValueError) as exc:
        return _fail(f"deploy:{group}", exc)
    return None


def run_wheels(directory: Path) -> TaskFailed | None:
    """The system's wheel, built in process from the generated source (each component edit).
    It is built in a temporary folder: deployments/wheels/ is its only copy, so a run-cache
    restore (which writes what the stamp lists) leaves the same tree as a run."""
    import tempfile

    from autocoder.deploy.wheels import WheelError, build_system_wheel

    try:
        with tempfile.TemporaryDirectory(prefix="autocoder-wheels-") as tmp:
            wheel = build_system_wheel(directory / GENERATED / "src", Path(tmp))
            files = {f"wheels/{wheel.name}": wheel.read_bytes()}
        write_group(directory, "wheels", files)
    except (OSError, WheelError) as exc:
        return _fail("deploy:wheels", exc)
    return None


def run_runtime_wheel(directory: Path) -> TaskFailed | None:
    """The runtime's wheel (pip and setuptools: seconds) and constraints.txt: they depend on
    the runtime's sources only, so a component edit does not rebuild them."""
    import tempfile

    from autocoder.deploy.wheels import WheelError, build_wheel, constraints, runtime_source

    try:
        with tempfile.TemporaryDirectory(prefix="autocoder-wheels-") as tmp:
            wheel = build_wheel(runtime_source(), Path(tmp))
            files = {f"wheels/{wheel.name}": wheel.read_bytes()}
        files["constraints.txt"] = constraints().encode()
        write_group(directory, RUNTIME_WHEEL, files)
    except (OSError, WheelError) as exc:
        return _fail(f"deploy:{RUNTIME_WHEEL}", exc)
    return None


def run_validate(directory: Path) -> TaskFailed | None:
    from autocoder.deploy.validate import validate_deployments
    from autocoder.fsutil import confined

    plan = load_plan(directory)
    suppressions = {s.rule: s.reason for s in plan.suppressions}
    try:
        reports = confined(directory, Path(GENERATED, "reports"), directory=True)
        result = validate_deployments(directory / DEPLOYMENTS, reports, suppressions)
    except OSError as exc:
        return _fail("deploy:validate", exc)
    for finding in result.findings:
        if finding.suppressed:
            print(f"suppressed {finding.tool} {finding.rule} {finding.file}: {finding.suppressed}")
    checks = ", ".join(f"{tool} {n}" for tool, n in result.checks.items())
    checks += "".join(f"; {tool} skipped: {why}" for tool, why in result.skipped.items())
    missing = [f for f in result.failing if f.rule in ("CKV000", "HL000")]  # a tool, not the blueprint
    if missing and len(missing) == len(result.failing):
        return TaskFailed("\n".join(f"deploy:validate: {f.message}" for f in missing))
    if result.failing:
        lines = [f"  {f.file}: {f.tool} {f.rule}: {f.message}" for f in result.failing]
        return TaskFailed(
            f"deploy:validate: {len(lines)} finding(s) (checks run: {checks}); fix the blueprint, or "
            f"suppress a rule in {DEPLOYMENT} under `suppressions: [{{rule, reason}}]`:\n" + "\n".join(lines)
        )
    print(f"deploy:validate: no findings (checks run: {checks}); reports in {GENERATED}/reports/")
    return None


def _source_deps(system: str, components: list[tuple[str, str]]) -> list[str]:
    from autocoder.codegen.paths import module_path, runtime_paths

    src = f"{GENERATED}/src"
    paths = [f"{src}/{p}" for p in runtime_paths(system)] + [
        f"{src}/{module_path(system, n)}" for n, _ in components
    ]
    return sorted(set(paths))


def task_deploy() -> Any:
    """Render deployments/ (Docker, Compose, Kubernetes, wheels) and validate it offline."""
    directory = project_dir()
    refuse_unsafe_output(directory)
    outline = blueprint_outline(directory)
    if outline is None:
        yield {"name": None, "task_dep": ["check"], "doc": task_deploy.__doc__}
        return
    system, components = outline
    fingerprint = fingerprint_file(directory, "deploy", deploy_fingerprint())
    yield {
        "name": "plan",
        "doc": "what the deployment artifacts render, extracted from the IR",
        "actions": [(run_plan, [directory])],
        "file_dep": [PLAN_INPUT_FILE, fingerprint],
        "targets": [PLAN],
        "clean": [(clean_targets, [directory, [PLAN]])],
    }
    from autocoder.deploy.templates import template_paths

    for group in RENDER_GROUPS:
        extra = template_paths() if group == "docker" else []
        yield {
            "name": group,
            "doc": f"render the {group} artifacts into {DEPLOYMENTS}/",
            "actions": [(run_render, [directory, group])],
            "file_dep": [PLAN, fingerprint, *extra],
            "targets": [_stamp(group)],
            "clean": [(clean_group, [directory, group])],
        }
    yield {
        "name": "wheels",
        "doc": f"build the system's wheel into {DEPLOYMENTS}/wheels/ (in process, offline)",
        "actions": [(run_wheels, [directory])],
        "file_dep": _source_deps(system, components),
        "targets": [_stamp("wheels")],
        "clean": [(clean_group, [directory, "wheels"])],
    }
    yield {
        "name": RUNTIME_WHEEL,
        "doc": f"build the runtime's wheel and constraints.txt into {DEPLOYMENTS}/ (offline)",
        "actions": [(run_runtime_wheel, [directory])],
        "file_dep": [fingerprint_file(directory, "runtime", _runtime_fp())],
        # after deploy:wheels: a stamp written before the split lists the runtime's files under
        # "wheels", and deploy:wheels deletes what its old stamp lists and it no longer writes
        "task_dep": ["deploy:wheels"],
        "targets": [_stamp(RUNTIME_WHEEL)],
        "clean": [(clean_group, [directory, RUNTIME_WHEEL])],
    }
    from autocoder.deploy.tools import checkov_setting  # light: no yaml, no Pod Security tables

    checkov = fingerprint_file(directory, "checkov", checkov_setting())  # managed, off, or a path
    yield {
        "name": "validate",
        "doc": "kubernetes-validate (strict), Pod Security Standards restricted, compose spec, hadolint, "
        "checkov, promtool",
        "actions": [(run_validate, [directory])],
        "file_dep": [PLAN, fingerprint, checkov, *(_stamp(g) for g in RENDER_GROUPS)],
        "targets": [VALIDATION_REPORT],
        "clean": [(clean_targets, [directory, [VALIDATION_REPORT]])],
    }


def _runtime_fp() -> str:
    from autocoder.runtime_pkg import runtime_fingerprint

    return runtime_fingerprint()


def clean_group(directory: Path, group: str, dryrun: bool = False) -> TaskFailed | None:
    try:
        names = sorted(json.loads((directory / _stamp(group)).read_text()))
    except (OSError, ValueError):
        names = []
    return clean_targets(directory, [f"{DEPLOYMENTS}/{n}" for n in names] + [_stamp(group)], dryrun)


def task_sign() -> dict[str, Any]:
    """Package, sign and attest the release: dist/<system>-<version>.tar.gz, .sig, .pub,
    .intoto.jsonl and .cdx.json (needs AUTOCODER_SIGNING_KEY, or uses a dev key with a warning)."""
    directory = project_dir()
    refuse_unsafe_output(directory)
    return {
        "actions": [(_sign, [directory])],
        "task_dep": ["deploy"],
        # runs when a packaged file, the key or the stage's code changed, or an output is gone
        "uptodate": [(_sign_uptodate, [directory])],
        "verbosity": 2,
    }


def task_image() -> dict[str, Any]:
    """Build and tag the container image through the Docker engine (skipped without one)."""
    directory = project_dir()
    refuse_unsafe_output(directory)
    return {"actions": [(_image, [directory])], "task_dep": ["deploy"], "uptodate": [False], "verbosity": 2}


def _sign(directory: Path) -> TaskFailed | None:
    from autocoder.deploy.sign import run_sign

    return run_sign(directory)


def _image(directory: Path) -> TaskFailed | None:
    from autocoder.deploy.image import run_image

    return run_image(directory)


def _sign_uptodate(directory: Path) -> bool:
    from autocoder.deploy.sign import sign_uptodate

    return sign_uptodate(directory)
