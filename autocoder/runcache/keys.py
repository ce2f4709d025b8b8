"""The key of a task's run-cache entry, and the fingerprint fields that go into it.

The key is a sha256 over the task's name, the fingerprint fields (the versions of the tools
that run its action) and the sorted (path, sha256) of its file dependencies. Autocoder's own
code is covered by the stage fingerprint files (generated/.autocoder/*.fingerprint), which are
file dependencies of every task. Paths outside the project (templates, rules) are named
relative to the installation, so two clones in different folders compute the same key.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
from importlib import metadata
from pathlib import Path

import autocoder
from autocoder.runcache.digests import dependency_digests, file_sha256

KEY_VERSION = 1
# The tools whose version changes what a task produces (lint findings, test outcomes, types;
# the runtime version is in deploy:plan and the wheels).
TOOLS = ("ruff", "bandit", "pytest", "hypothesis", "mypy", "autocoder-runtime")


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"


def fingerprint_fields() -> dict[str, str]:
    """What, besides the file dependencies, determines every task's output (the tasks run in
    the project's folder, whose settings choose the provider)."""
    return _fingerprint_fields(os.getcwd())  # a str: called once per task when loading


@functools.cache
def _fingerprint_fields(project: str) -> dict[str, str]:
    from autocoder.llm.fingerprint import provider_fingerprint_memo

    # the provider's own fingerprint: its name, model, parameters and prompt version
    fields = {"autocoder": autocoder.__version__, "provider": provider_fingerprint_memo(Path(project))}
    fields["python"] = f"{sys.version_info[0]}.{sys.version_info[1]}"  # platform costs ~10 ms to import
    for tool in TOOLS:
        fields[tool] = _version(tool)
    return fields


@functools.cache
def machine_class() -> dict[str, str]:
    """CPU model and count: benchmark results are only reused on the same kind of machine."""
    import platform

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": model, "cpus": str(os.cpu_count() or 0), "arch": platform.machine()}


def task_fields(task_name: str) -> dict[str, str]:
    """The fingerprint fields of one task: bench:* also depends on the machine class, and two
    deploy tasks on tools outside the file dependencies."""
    fields = dict(fingerprint_fields())
    if task_name.split(":", 1)[0] == "bench":
        fields.update({f"machine.{k}": v for k, v in machine_class().items()})
    if task_name == "deploy:wheels":
        fields["flit-core"] = _version("flit-core")  # the system's build backend, in process
    if task_name == "deploy:runtime-wheel":
        fields.update(wheel_fields())
    if task_name == "deploy:validate":
        fields.update(validator_fields())
    return fields


@functools.cache
def wheel_fields() -> dict[str, str]:
    """What the runtime's wheel and constraints.txt depend on besides the runtime's sources
    (a file dependency): the build backend and pip (SOURCE_DATE_EPOCH fixes the timestamps,
    deploy/wheels.py), and constraints.txt, which pins the runtime's dependencies' versions."""
    from autocoder.deploy.wheels import constraints

    fields = {tool: _version(tool) for tool in ("pip", "setuptools", "wheel")}
    fields["constraints"] = hashlib.sha256(constraints().encode()).hexdigest()[:16]
    return fields


@functools.cache
def validator_fields() -> dict[str, str]:
    """The offline validators of deploy:validate: their packages' versions and, for the two
    binaries, a digest of the file (absent: the report says 0 checks, so that is a field too)."""
    import shutil

    from autocoder.deploy.validate import hadolint_binary

    fields = {tool: _version(tool) for tool in ("kubernetes-validate", "jsonschema", "pyyaml")}
    for tool, binary in (("hadolint", hadolint_binary()), ("promtool", shutil.which("promtool"))):
        fields[tool] = file_sha256(Path(binary))[:16] if binary else "absent"
    return fields


@functools.cache
def _install_roots() -> tuple[Path, ...]:
    package = Path(autocoder.__file__).resolve().parent
    return (package.parent, package)


def dep_name(project: Path, path: str) -> str:
    """A file dependency's name in the key: relative to the project when inside it, else to
    Autocoder's installation (templates, rules), else its file name."""
    if not os.path.isabs(path) and ".." not in Path(path).parts:
        return Path(path).as_posix()  # inside the project (the common case: no resolve())
    full = (project / path).resolve()
    for root in (project.resolve(), *_install_roots()):
        if full.is_relative_to(root):
            prefix = "" if root == project.resolve() else "<autocoder>/"
            return prefix + full.relative_to(root).as_posix()
    return "<external>/" + full.name


def task_key(project: Path, task_name: str, file_deps: list[str], targets: list[str]) -> str:
    """The entry's key; raises OSError when a file dependency cannot be read."""
    digests = dependency_digests(project, task_name, file_deps)
    deps = sorted((dep_name(project, p), digests[p]) for p in file_deps)
    material = {
        "version": KEY_VERSION,
        "task": task_name,
        "fields": task_fields(task_name),
        "deps": deps,
        "targets": sorted(targets),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
