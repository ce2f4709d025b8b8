"""JSON Schemas of the blueprints and the IR, generated from the pydantic models.

The files in schemas/ are what editors (via the yaml-language-server modeline) and other tools
read; they must never drift from the models, which `autocoder schema --check` and a test verify.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from autocoder.blueprint.models import Architecture, Deployment
from autocoder.canonical import canonical_json
from autocoder.fsutil import write_if_changed
from autocoder.ir.models import IR, Slice

SCHEMAS: dict[str, type[BaseModel]] = {
    "architecture.v1.schema.json": Architecture,
    "deployment.v1.schema.json": Deployment,
    "ir.v1.schema.json": IR,
    "ir-slice.v1.schema.json": Slice,
}
BASE_ID = "https://autocoder.dev/schemas/"


def schema_document(filename: str) -> dict[str, Any]:
    document = SCHEMAS[filename].model_json_schema(mode="validation", by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": BASE_ID + filename, **document}


def default_dir() -> Path:
    return Path(str(importlib.resources.files("autocoder.schemas")))


def write_schemas(out: Path | None = None) -> list[Path]:
    """Write every schema file; returns the paths whose bytes changed."""
    out = out or default_dir()
    written = []
    for filename in SCHEMAS:
        path = out / filename
        if write_if_changed(path, canonical_json(schema_document(filename))):
            written.append(path)
    return written


def check_schemas(out: Path | None = None) -> list[str]:
    """Names of schema files that are missing or differ from the models."""
    out = out or default_dir()
    drift = []
    for filename in SCHEMAS:
        path = out / filename
        if not path.exists() or path.read_bytes() != canonical_json(schema_document(filename)):
            drift.append(filename)
    return drift
