"""`doit sign`: the release package, its signature, SBOM and signed SLSA provenance.

dist/<system>-<version>.tar.gz   deterministic tarball (sorted, mtime 0, uid 0) holding the
                                 blueprints, the IR, the generated source, the reports and
                                 deployments/, plus MANIFEST.sha256 of every file in it
dist/<...>.tar.gz.sig            base64 DER ECDSA P-256 over SHA-256: cosign sign-blob's format
dist/<...>.pub                   the public key (PEM)
dist/<...>.cdx.json              CycloneDX SBOM of the system's dependencies
dist/<...>.intoto.jsonl          DSSE envelope of an in-toto Statement, SLSA provenance v1
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import shlex
import tarfile
from pathlib import Path
from typing import Any

from doit.exceptions import TaskFailed

import autocoder
from autocoder.layout import ARCHITECTURE, DEPLOYMENT, GENERATED

MANIFEST = "MANIFEST.sha256"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "urn:autocoder:build:v1"
PACKAGED = (f"{GENERATED}/ir.v1.json", f"{GENERATED}/src", f"{GENERATED}/reports", "deployments")
SKIP_PARTS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", ".cache"}
LOCK_FILES = ("autocoder.lock", f"{GENERATED}/autocoder.lock")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def packaged_files(directory: Path) -> list[str]:
    """Project-relative paths of every file the package holds, sorted."""
    names = [n for n in (ARCHITECTURE, DEPLOYMENT) if (directory / n).is_file()]
    for top in PACKAGED:
        root = directory / top
        if root.is_file():
            names.append(top)
            continue
        for path in sorted(root.rglob("*")) if root.is_dir() else []:
            rel = path.relative_to(directory)
            if (
                path.is_file()
                and not path.is_symlink()
                and not SKIP_PARTS & set(rel.parts)
                and path.suffix != ".pyc"
            ):
                names.append(rel.as_posix())
    return sorted(names)


def manifest_text(files: dict[str, bytes]) -> bytes:
    return "".join(f"{sha256(data)}  {name}\n" for name, data in sorted(files.items())).encode()


def parse_manifest(text: bytes) -> dict[str, str]:
    entries = {}
    for line in text.decode().splitlines():
        digest, _, name = line.partition("  ")
        entries[name] = digest
    return entries


def make_tarball(prefix: str, files: dict[str, bytes]) -> bytes:
    """Same files, same bytes: sorted members, fixed metadata, gzip without name or time."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted({**files, MANIFEST: manifest_text(files)}.items()):
            info = tarfile.TarInfo(f"{prefix}/{name}")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def read_tarball(data: bytes) -> dict[str, bytes]:
    """Members of a package by their name inside it (without the prefix); only regular files
    with plain relative names (anything else is refused, nothing is extracted to disk)."""
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            parts = Path(member.name).parts
            if not member.isfile() or member.name.startswith("/") or ".." in parts or len(parts) < 2:
                raise ValueError(f"unexpected member {member.name!r} in the package")
            handle = tar.extractfile(member)
            assert handle is not None
            files["/".join(parts[1:])] = handle.read()
    return files


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what the envelope's signature covers."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def _dependency(uri: str, data: bytes) -> dict[str, Any]:
    return {"uri": uri, "digest": {"sha256": sha256(data)}}


def provenance(directory: Path, outputs: dict[str, bytes], packaged: dict[str, bytes]) -> dict[str, Any]:
    """in-toto Statement v1 with a SLSA provenance v1 predicate: every input (blueprints, lock
    file, templates, the generator and runtime versions and code) and every output digest."""
    from autocoder.llm.provider import provider_fingerprint
    from autocoder.runtime_pkg import runtime_fingerprint
    from autocoder.tasks.deploy_tasks import deploy_fingerprint
    from autocoder.tasks.gen_tasks import codegen_fingerprint
    from autocoder.templates_dir import templates_root

    inputs = [
        _dependency(f"file:{n}", (directory / n).read_bytes())
        for n in (ARCHITECTURE, DEPLOYMENT)
        if (directory / n).is_file()
    ]
    inputs += [
        _dependency(f"file:{n}", (directory / n).read_bytes())
        for n in LOCK_FILES
        if (directory / n).is_file()
    ]
    root = templates_root()
    for path in sorted(root.rglob("*.j2")):
        inputs.append(_dependency(f"template:{path.relative_to(root).as_posix()}", path.read_bytes()))
    import autocoder_runtime

    inputs += [
        {
            "uri": f"pkg:pypi/autocoder@{autocoder.__version__}",
            "digest": {"sha256": codegen_fingerprint(provider_fingerprint(directory))},
        },
        {
            "uri": f"pkg:pypi/autocoder-runtime@{autocoder_runtime.__version__}",
            "digest": {"sha256": runtime_fingerprint()},
        },
        {"uri": "urn:autocoder:deploy-stage", "digest": {"sha256": deploy_fingerprint()}},
    ]
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": name, "digest": {"sha256": sha256(data)}} for name, data in sorted(outputs.items())
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {"blueprints": [ARCHITECTURE, DEPLOYMENT], "tasks": ["deploy", "sign"]},
                "internalParameters": {
                    "llm_provider": json.loads(provider_fingerprint(directory)),
                    "llm_components": _llm_components(directory),
                },
                "resolvedDependencies": inputs,
            },
            "runDetails": {
                "builder": {"id": f"urn:autocoder:{autocoder.__version__}"},
                "metadata": {},
                "byproducts": [
                    {"name": name, "digest": {"sha256": sha256(data)}}
                    for name, data in sorted(packaged.items())
                ],
            },
        },
    }


def _llm_components(directory: Path) -> dict[str, dict[str, str | None]]:
    """Per component whose logic an LLM wrote: the model and the prompt's sha256 of the body
    the build accepted (generated/llm/, what `autocoder lock` freezes)."""
    from autocoder.llm.lock import ACCEPTED, LockEntry

    found: dict[str, dict[str, str | None]] = {}
    for path in sorted((directory / ACCEPTED).glob("*.json")):
        entry = LockEntry.model_validate(json.loads(path.read_text()))
        found[path.stem] = {"model": entry.model, "prompt_sha256": entry.prompt_hash}
    return found


def envelope(key: Any, statement: dict[str, Any]) -> bytes:
    from autocoder.deploy.keys import sign

    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    signature = sign(key, pae(PAYLOAD_TYPE, payload))
    body = {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": "", "sig": base64.b64encode(signature).decode()}],
    }
    return (json.dumps(body, sort_keys=True, separators=(",", ":")) + "\n").encode()


def sbom(directory: Path) -> bytes:
    """CycloneDX 1.6 JSON (cyclonedx-python-lib) of what the image installs: the system, the
    runtime and every pinned dependency of deployments/constraints.txt, with package URLs.
    Reproducible: the serial number derives from the content, the timestamp is
    SOURCE_DATE_EPOCH's. (cyclonedx-bom's CLI was not used: its `validation` extra makes
    every `import jsonschema` in the build parse an RFC 3987 grammar, seconds each time.)"""
    import datetime
    import uuid

    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    from autocoder.deploy.wheels import SOURCE_DATE_EPOCH

    plan = json.loads((directory / GENERATED / "deploy" / "plan.json").read_text())
    constraints = (directory / "deployments" / "constraints.txt").read_text()

    def component(name: str, version: str, kind: ComponentType) -> Component:
        purl = PackageURL("pypi", name=name, version=version)
        return Component(name=name, version=version, type=kind, bom_ref=purl.to_string(), purl=purl)

    root = component(plan["system"], plan["version"], ComponentType.APPLICATION)
    runtime = component("autocoder-runtime", plan["runtime_version"], ComponentType.LIBRARY)
    pinned = []
    for line in constraints.splitlines():
        name, sep, version = line.strip().partition("==")
        if sep and not name.startswith("#"):
            pinned.append(component(name, version, ComponentType.LIBRARY))
    when = datetime.datetime.fromtimestamp(int(SOURCE_DATE_EPOCH), tz=datetime.UTC)
    serial = uuid.uuid5(
        uuid.NAMESPACE_URL, f"autocoder:{plan['system']}:{plan['version']}:{sha256(constraints.encode())}"
    )
    bom = Bom(serial_number=serial, metadata=BomMetaData(component=root, timestamp=when))
    for item in [runtime, *pinned]:
        bom.components.add(item)
    bom.register_dependency(root, [runtime])
    bom.register_dependency(runtime, pinned)
    return (JsonV1Dot6(bom).output_as_string(indent=2) + "\n").encode()


def release_name(directory: Path) -> str:
    plan = json.loads((directory / GENERATED / "deploy" / "plan.json").read_text())
    return f"{plan['system']}-{plan['version']}"


SIGN_STATE = f"{GENERATED}/.autocoder/sign.inputs"


def sign_inputs_digest(directory: Path) -> str:
    """What decides the release: every packaged file, the key (which file, its bytes) and the
    code of Autocoder's deploy stage. ECDSA signatures differ at each signing, so `sign` runs
    only when this changes (or an output is missing), not on every `doit sign`."""
    import os

    from autocoder.tasks.deploy_tasks import deploy_fingerprint

    digest = hashlib.sha256(deploy_fingerprint().encode())
    for rel in packaged_files(directory):
        digest.update(rel.encode() + b"\0" + hashlib.sha256((directory / rel).read_bytes()).digest())
    key = os.environ.get("AUTOCODER_SIGNING_KEY", "")
    digest.update(key.encode() + b"\0")
    if key and Path(key).is_file():
        digest.update(Path(key).read_bytes())
    return digest.hexdigest()


def sign_uptodate(directory: Path) -> bool:
    """doit's uptodate for `sign`: the recorded inputs are these, and every output exists."""
    try:
        recorded = (directory / SIGN_STATE).read_text().split()
        name = release_name(directory)
    except (OSError, ValueError, KeyError):
        return False
    outputs = [f"{name}.tar.gz", f"{name}.tar.gz.sig", f"{name}.pub", f"{name}.intoto.jsonl"]
    if not all((directory / "dist" / o).is_file() for o in outputs):
        return False
    try:
        return recorded == [sign_inputs_digest(directory)]
    except OSError:
        return False


def run_sign(directory: Path) -> TaskFailed | None:
    from autocoder.deploy.keys import SigningKeyError, public_pem, sign, signing_key
    from autocoder.fsutil import confined, write_if_changed

    try:
        key, source = signing_key(directory)
        name = release_name(directory)
        packaged = {rel: (directory / rel).read_bytes() for rel in packaged_files(directory)}
        tarball = make_tarball(name, packaged)
        outputs = {f"{name}.tar.gz": tarball}
        outputs[f"{name}.cdx.json"] = sbom(directory)
        files = {
            **outputs,
            f"{name}.tar.gz.sig": base64.b64encode(sign(key, tarball)),
            f"{name}.pub": public_pem(key),
            f"{name}.intoto.jsonl": envelope(key, provenance(directory, outputs, packaged)),
        }
        dist = confined(directory, Path("dist"), directory=True)
        for file, data in sorted(files.items()):
            write_if_changed(confined(directory, dist / file), data)
        write_if_changed(
            confined(directory, Path(SIGN_STATE)), (sign_inputs_digest(directory) + "\n").encode()
        )
    except (SigningKeyError, OSError, RuntimeError, ValueError) as exc:
        return TaskFailed(f"sign: {exc}")
    where = shlex.quote(str(directory.resolve() / "dist" / f"{name}.tar.gz"))  # copyable from anywhere
    print(
        f"sign: dist/{name}.tar.gz ({len(packaged)} files) signed with {source}; verify with "
        f"`autocoder verify {where}`"
    )
    return None
