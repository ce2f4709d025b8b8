"""Starter blueprints written by `autocoder init` where none exist yet."""

from __future__ import annotations

import os
from pathlib import Path

ARCHITECTURE_TEMPLATE = """\
# yaml-language-server: $schema={schemas}/architecture.v1.schema.json
# What the system is. `autocoder check .` explains every problem with file:line:col.
schema_version: "1.0.0"
system: {{name: {name}, version: "0.1.0", description: "Accept events over HTTP and store them"}}
schemas:
  Event:
    fields:
      event_id: {{type: string, pattern: "^[a-z0-9-]{{4,64}}$"}}
      value: {{type: number}}
components:
  - name: events_api
    kind: api_endpoint
    outputs: {{events: Event}}
    config: {{routes: [{{method: POST, path: /events, emit: events}}]}}
    security: {{auth: api_key}}
  - name: event_store
    kind: store
    inputs: {{in: Event}}
    config: {{key: event_id}}
bindings:
  - {{from: events_api.events, to: event_store.in}}
policy:
  security: {{require_auth_on_ingress: true}}
"""

DEPLOYMENT_TEMPLATE = """\
# yaml-language-server: $schema={schemas}/deployment.v1.schema.json
# Where and how the system runs. Secrets by name and key only, never values.
schema_version: "1.0.0"
environment: development
replicas: {{default: 1}}
store: {{backend: sqlite}}
# checkov (deploy:validate) wants the image pinned by digest; a local image has none yet
suppressions:
  - rule: CKV_K8S_43
    reason: "the image is built locally and not pushed yet, so it has no digest to pin; set
      image.digest for a release and remove this waiver"
"""


def schema_folder(directory: Path) -> str:
    """The installed JSON Schemas (package autocoder.schemas) as a path from `directory`, for
    the editor modeline: it resolves offline, as the examples' `../../schemas/` does."""
    import importlib.resources

    installed = Path(str(importlib.resources.files("autocoder.schemas"))).resolve()
    here = directory.resolve()
    if os.path.commonpath([installed, here]) == installed.anchor:  # nothing shared but the root
        return installed.as_posix()
    return Path(os.path.relpath(installed, here)).as_posix()


def starter_blueprints(name: str, directory: Path) -> dict[str, str]:
    schemas = schema_folder(directory)
    return {
        "architecture.yaml": ARCHITECTURE_TEMPLATE.format(name=name, schemas=schemas),
        "deployment.yaml": DEPLOYMENT_TEMPLATE.format(schemas=schemas),
    }
