"""Where business logic comes from: the provider interface and its offline implementation.

A provider turns a component's IR into the source of its logic functions. `offline` serves
declarative logic only and is deterministic; the LLM provider (autocoder.llm.provider) serves
free-form components as well. A component that no configured provider can serve is a build error naming the
component and the ways out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from autocoder.codegen.render import GenerationError

if TYPE_CHECKING:
    from autocoder.ir.models import ComponentIR


class Provider(Protocol):
    name: str

    def fingerprint(self) -> dict[str, Any]:
        """Everything about the provider that changes generated output (for doit's uptodate)."""

    def can_serve(self, component: ComponentIR) -> bool: ...


class OfflineProvider:
    """Deterministic generation from declarative logic; no network, no model."""

    name = "offline"

    def fingerprint(self) -> dict[str, Any]:
        return {"provider": self.name}

    def can_serve(self, component: ComponentIR) -> bool:
        return component.logic_source in ("declarative", "builtin")


def require_served(provider: Provider, component: ComponentIR) -> None:
    if provider.can_serve(component):
        return
    name, kind = component.name, component.kind
    raise GenerationError(
        f"component '{name}' ({kind}) needs free-form logic, which the '{provider.name}' provider "
        f"cannot write. Ways out: give it declarative `logic` in architecture.yaml; or configure an "
        f"OpenAI-compatible model (`autocoder build DIR --llm-base-url URL --llm-model NAME`, the "
        f"AUTOCODER_LLM_* variables or the `llm:` block of deployment.yaml); or commit a lock file "
        f"that has its completion (`autocoder lock DIR`)."
    )


def get_provider(name: str = "offline") -> Provider:
    if name == "offline":
        return OfflineProvider()
    raise GenerationError(f"unknown LLM provider '{name}'; available: offline")
