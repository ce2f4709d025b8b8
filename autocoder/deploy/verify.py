"""`autocoder verify dist/<system>-<version>.tar.gz`: signature, manifest and provenance.

Every problem is collected and named (a changed file by its path, a provenance subject by its
name), so an operator sees what changed, not only that something did.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from pathlib import Path

from autocoder.deploy.keys import verify as verify_signature
from autocoder.deploy.sign import (
    MANIFEST,
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    pae,
    parse_manifest,
    read_tarball,
)


def _sibling(tarball: Path, suffix: str) -> Path:
    stem = tarball.name.removesuffix(".tar.gz")
    return tarball.with_name(stem + suffix)


def verify_release(tarball: Path, public_key: Path | None = None) -> list[str]:
    """The problems found (empty: the package is intact and signed by the key)."""
    problems: list[str] = []
    key_path = public_key or _sibling(tarball, ".pub")
    try:
        data = tarball.read_bytes()
        public = key_path.read_bytes()
    except OSError as exc:
        return [f"cannot read {exc.filename}: {exc.strerror}"]
    problems += _check_signature(tarball, data, public)
    problems += _check_manifest(tarball, data)
    problems += _check_provenance(tarball, data, public)
    return problems


def _check_signature(tarball: Path, data: bytes, public: bytes) -> list[str]:
    sig_path = tarball.with_name(tarball.name + ".sig")
    try:
        signature = base64.b64decode(sig_path.read_bytes(), validate=True)
    except OSError as exc:
        return [f"signature {sig_path}: cannot read it ({exc.strerror})"]
    except (binascii.Error, ValueError):
        return [f"signature {sig_path}: not base64"]
    try:
        ok = verify_signature(public, signature, data)
    except ValueError as exc:
        return [f"public key: not a PEM public key ({exc})"]
    return [] if ok else [f"signature {sig_path.name} does not match {tarball.name} and this key"]


def _check_manifest(tarball: Path, data: bytes) -> list[str]:
    try:
        files = read_tarball(data)
    except (OSError, ValueError, EOFError) as exc:
        return [f"{tarball.name}: not a readable package ({exc})"]
    if MANIFEST not in files:
        return [f"{tarball.name}: no {MANIFEST} inside"]
    expected = parse_manifest(files.pop(MANIFEST))
    problems = []
    for name in sorted(set(expected) | set(files)):
        if name not in files:
            problems.append(f"missing from the package: {name}")
        elif name not in expected:
            problems.append(f"not in the manifest: {name}")
        elif hashlib.sha256(files[name]).hexdigest() != expected[name]:
            problems.append(f"changed: {name} (its SHA-256 differs from the manifest)")
    return problems


def _check_provenance(tarball: Path, data: bytes, public: bytes) -> list[str]:
    path = _sibling(tarball, ".intoto.jsonl")
    try:
        env = json.loads(path.read_text().splitlines()[0])
        payload = base64.b64decode(env["payload"])
        signatures = [base64.b64decode(s["sig"]) for s in env["signatures"]]
        statement = json.loads(payload)
    except OSError as exc:
        return [f"provenance {path}: cannot read it ({exc.strerror})"]
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        return [f"provenance {path.name}: not a DSSE envelope ({exc})"]
    problems = []
    if env.get("payloadType") != PAYLOAD_TYPE:
        problems.append(f"provenance {path.name}: payloadType is not {PAYLOAD_TYPE}")
    if not any(verify_signature(public, sig, pae(PAYLOAD_TYPE, payload)) for sig in signatures):
        problems.append(f"provenance {path.name}: the envelope's signature does not match this key")
    if statement.get("_type") != STATEMENT_TYPE or statement.get("predicateType") != PREDICATE_TYPE:
        problems.append(f"provenance {path.name}: not an in-toto Statement with SLSA provenance v1")
    subjects = {s.get("name"): s.get("digest", {}).get("sha256") for s in statement.get("subject", [])}
    if tarball.name not in subjects:
        problems.append(f"provenance {path.name}: {tarball.name} is not one of its subjects")
    for name, digest in sorted(subjects.items()):
        target = tarball.with_name(str(name))
        try:
            actual = hashlib.sha256(target.read_bytes()).hexdigest()
        except OSError:
            problems.append(f"provenance subject {name}: file missing")
            continue
        if actual != digest:
            problems.append(f"provenance subject {name}: changed (its SHA-256 differs from the provenance)")
    return problems
