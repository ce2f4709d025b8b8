"""LLM settings of one build, from three sources in a fixed precedence.

CLI flags (which `autocoder build` passes on as AUTOCODER_LLM_* variables, so they also reach
doit's worker processes) win over the environment, which wins over the `llm:` block of
deployment.yaml, which wins over the defaults here. The API key never comes from a file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from autocoder.layout import GENERATED

CACHE_DIR = f"{GENERATED}/.cache/llm"
ENV_PREFIX = "AUTOCODER_LLM_"
# variable -> settings field; OPENAI_* are read the way the openai SDK reads them
ENV_FIELDS = {
    "PROVIDER": "provider",
    "BASE_URL": "base_url",
    "MODEL": "model",
    "API_KEY": "api_key",
    "TEMPERATURE": "temperature",
    "MAX_TOKENS": "max_tokens",
    "TIMEOUT": "timeout",
    "RETRIES": "retries",
    "REPAIR_ATTEMPTS": "repair_attempts",
    "CACHE_DIR": "cache_dir",
    "FROZEN": "frozen",
}
FALLBACK_ENV = {"base_url": "OPENAI_BASE_URL", "api_key": "OPENAI_API_KEY"}


class LLMSettings(BaseModel):
    """Everything a build needs to ask a model for business logic (or to refuse to)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Literal["offline", "openai"] = "offline"
    base_url: str | None = None
    model: str | None = None
    api_key: str | None = Field(default=None, repr=False)
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_tokens: int = Field(default=1024, ge=16, le=100_000)
    timeout: float = Field(default=60.0, gt=0, le=3600)
    retries: int = Field(default=3, ge=0, le=20)
    repair_attempts: int = Field(default=2, ge=0, le=10)
    price_in_per_1k: float | None = Field(default=None, ge=0)
    price_out_per_1k: float | None = Field(default=None, ge=0)
    cache_dir: str = CACHE_DIR
    frozen: bool = False

    def fingerprint(self) -> dict[str, Any]:
        """What changes the code a model writes (not where it is served, nor the key)."""
        if self.provider == "offline":
            return {"provider": "offline"}
        return {
            "provider": self.provider,
            "model": self.model,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "repair_attempts": self.repair_attempts,
        }

    def cost(self, tokens_in: int, tokens_out: int) -> float | None:
        if self.price_in_per_1k is None and self.price_out_per_1k is None:
            return None
        return round(
            tokens_in / 1000 * (self.price_in_per_1k or 0) + tokens_out / 1000 * (self.price_out_per_1k or 0),
            6,
        )


class SettingsError(ValueError):
    """Settings that cannot be used; the message names the source and the fix."""


def deployment_block(directory: Path) -> dict[str, Any]:
    """The `llm:` block of DIR/deployment.yaml, or {} (the blueprint check reports a bad file)."""
    try:
        data = yaml.safe_load((directory / "deployment.yaml").read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return {}
    block = data.get("llm") if isinstance(data, dict) else None
    return dict(block) if isinstance(block, dict) else {}


def environment_values(env: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ) if env is None else env
    values = {
        field: env[ENV_PREFIX + name] for name, field in ENV_FIELDS.items() if env.get(ENV_PREFIX + name)
    }
    for field, fallback in FALLBACK_ENV.items():
        if field not in values and env.get(fallback):
            values[field] = env[fallback]
    return values


def resolve(directory: Path, env: dict[str, str] | None = None) -> LLMSettings:
    """The build's settings: environment (and so CLI flags) over deployment.yaml over defaults.

    With no provider named anywhere, a configured model or server selects `openai`."""
    merged: dict[str, Any] = {}
    block = deployment_block(directory)
    price = block.pop("price_per_1k_tokens", None)
    if isinstance(price, dict):
        merged["price_in_per_1k"] = price.get("prompt")
        merged["price_out_per_1k"] = price.get("completion")
    merged.update({k: v for k, v in block.items() if v is not None})
    merged.update(environment_values(env))
    if "provider" not in merged and (merged.get("model") or merged.get("base_url")):
        merged["provider"] = "openai"
    if isinstance(merged.get("frozen"), str):
        merged["frozen"] = merged["frozen"].lower() in ("1", "true", "yes")
    try:
        return LLMSettings.model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise SettingsError(
            f"LLM settings are invalid ({problems}); fix the `llm:` block of deployment.yaml, the "
            f"{ENV_PREFIX}* variables or the --llm-* flags"
        ) from None
