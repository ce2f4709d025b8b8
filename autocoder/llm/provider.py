"""The provider of a build: declarative logic offline, free-form logic from the lock or a model.

`provider_for(directory)` reads the build's settings (autocoder.llm.settings);
`generate_files` is what a gen task calls for one component.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from autocoder.codegen.component import Function, generate_component
from autocoder.codegen.render import GenerationError
from autocoder.ir.models import ComponentIR, Slice
from autocoder.llm.prompt import PROMPT_VERSION, SIGNATURES
from autocoder.llm.settings import LLMSettings, SettingsError, resolve


class LLMProvider:
    """Serves declarative and builtin logic as `offline` does, and free-form logic of the kinds
    with a fixed method signature (autocoder.llm.prompt.SIGNATURES) from the lock or a model."""

    def __init__(self, settings: LLMSettings) -> None:
        self.settings = settings
        self.name: str = settings.provider

    def fingerprint(self) -> dict[str, Any]:
        return {**self.settings.fingerprint(), "prompt_version": PROMPT_VERSION}

    def can_serve(self, component: ComponentIR) -> bool:
        return component.logic_source in ("declarative", "builtin") or component.kind in SIGNATURES


def provider_for(directory: Path) -> LLMProvider:
    """The build's provider (settings read afresh: cheap, and the environment may change
    between builds in one process); invalid settings raise SettingsError."""
    return LLMProvider(resolve(directory))


def provider_fingerprint(directory: Path) -> str:
    """The provider part of the codegen fingerprint (invalid settings: their error, so that a
    fixed setting reruns the gen tasks, which then report nothing or the new error)."""
    try:
        data = provider_for(directory).fingerprint()
    except SettingsError as exc:
        data = {"invalid": str(exc), "prompt_version": PROMPT_VERSION}
    return json.dumps(data, sort_keys=True)


def generate_files(directory: Path, slice_: Slice) -> dict[str, str]:
    """One component's files; a GenerationError names the component and the fix."""
    try:
        provider = provider_for(directory)
    except SettingsError as exc:
        raise GenerationError(str(exc)) from None
    if slice_.component.logic_source != "llm":
        return generate_component(slice_, provider)
    from autocoder.llm.generate import llm_logic

    checker = _Checker(directory, slice_, provider)
    return generate_component(slice_, provider, llm_logic(directory, slice_, provider.settings, checker))


class _Checker:
    """Renders a candidate method into the component's files and runs the module checks; the
    system files its tests import are generated from the IR once, on first use."""

    def __init__(self, directory: Path, slice_: Slice, provider: LLMProvider) -> None:
        self.directory = directory
        self.slice = slice_
        self.provider = provider
        self.runtime: dict[str, str] | None = None

    def __call__(self, function: Function) -> list[str]:
        from autocoder.llm.check import module_problems

        try:
            files = generate_component(self.slice, self.provider, function)
        except GenerationError as exc:
            return [str(exc)]
        from autocoder.fsutil import confined
        from autocoder.layout import CACHE

        cache = confined(self.directory, self.directory / CACHE / "mypy-llm", directory=True)
        return module_problems(files, self.slice, self._runtime(), function, cache)

    def _runtime(self) -> dict[str, str]:
        if self.runtime is None:
            from autocoder.codegen.system import generate_runtime
            from autocoder.fsutil import confined
            from autocoder.ir.models import load_ir
            from autocoder.layout import GENERATED
            from autocoder.tasks.gen_tasks import SAMPLES

            ir = load_ir(self.directory / GENERATED / "ir.v1.json")
            self.runtime = generate_runtime(ir, confined(self.directory, Path(SAMPLES), directory=True))
        return self.runtime
