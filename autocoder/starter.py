"""Starter blueprints written by `autocoder init` where none exist yet."""

from __future__ import annotations

ARCHITECTURE_TEMPLATE = """\
# yaml-language-server: $schema=https://autocoder.dev/schemas/architecture.v1.schema.json
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
# yaml-language-server: $schema=https://autocoder.dev/schemas/deployment.v1.schema.json
# Where and how the system runs. Secrets by name and key only, never values.
schema_version: "1.0.0"
environment: development
replicas: {default: 1}
store: {backend: sqlite}
"""


def starter_blueprints(name: str) -> dict[str, str]:
    return {
        "architecture.yaml": ARCHITECTURE_TEMPLATE.format(name=name),
        "deployment.yaml": DEPLOYMENT_TEMPLATE,
    }
