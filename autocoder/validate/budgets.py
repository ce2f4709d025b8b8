"""rules/budgets.yaml, read once per process. Its own module so that the report, which needs
only the tolerance, does not import the bench tier (and through it the IR's pydantic models)."""

from __future__ import annotations

import functools
import importlib.resources
from typing import Any


@functools.cache
def budget_rules() -> dict[str, Any]:
    import yaml

    text = importlib.resources.files("autocoder.rules").joinpath("budgets.yaml").read_text()
    rules: dict[str, Any] = yaml.safe_load(text)
    return rules
