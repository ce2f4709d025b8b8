"""The completion cache: diskcache, text in and text out, never evicted.

A cache directory may be shared between checkouts and CI runs, so nothing read from it may run
code: keys and values are str only (JSON text), and a row that holds a pickle (which this code
never writes) is refused instead of loaded. Nothing is evicted silently: a cache that forgets
asks the model again and changes the code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import diskcache
from diskcache.core import MODE_PICKLE

from autocoder.canonical import content_hash
from autocoder.llm.usage import Usage


class UnsafeCacheEntry(ValueError):
    """A cache row that is not text: written by something else, never loaded."""


class TextDisk(diskcache.Disk):  # type: ignore[misc]  # diskcache has no type hints
    """diskcache's Disk restricted to str keys and values (no pickle in either direction)."""

    def put(self, key: Any) -> Any:
        if not isinstance(key, str):
            raise TypeError("completion cache keys are str")
        return super().put(key)

    def get(self, key: Any, raw: bool) -> Any:
        if not raw:
            raise UnsafeCacheEntry("the completion cache holds a pickled key; delete the cache directory")
        return super().get(key, raw)

    def store(self, value: Any, read: bool, key: Any = diskcache.core.UNKNOWN) -> Any:
        if read or not isinstance(value, str):
            raise TypeError("completion cache values are JSON text")
        return super().store(value, read, key=key)

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if mode == MODE_PICKLE or read:
            raise UnsafeCacheEntry("the completion cache holds a pickled value; delete the cache directory")
        return super().fetch(mode, filename, value, read)


def cache_key(request: dict[str, Any]) -> str:
    """Canonical sha256 of everything that decides an answer: provider, model, messages,
    parameters and prompt version (the caller puts all of them in `request`)."""
    return content_hash(request)


class CompletionCache:
    def __init__(self, directory: Path) -> None:
        self.cache = diskcache.Cache(str(directory), eviction_policy="none", disk=TextDisk)

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored completion, or None (missing, or not a JSON object: treated as missing)."""
        text = self.cache.get(key)
        if not isinstance(text, str):
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        self.cache.set(key, json.dumps(value, sort_keys=True))

    def close(self) -> None:
        self.cache.close()


def ask(
    client: Any, cache: CompletionCache, messages: list[dict[str, str]], prompt_version: str, usage: Usage
) -> tuple[str, dict[str, Any]]:
    """(cache key, answer) for a conversation so far: from the cache, else from the model
    ({"malformed": why} for an answer with nothing usable in it). Counts into `usage`; a
    server that cannot answer raises the client's ModelUnavailable. The caller decides when
    an answer enters the cache (only once its conversation ends well)."""
    from autocoder.llm.client import MalformedResponse

    request = {
        "prompt_version": prompt_version,
        "provider": client.settings.provider,
        "messages": messages,
        "parameters": client.parameters(),
    }
    key = cache_key(request)
    stored = cache.get(key)
    if stored is not None and isinstance(stored.get("content"), str):
        usage.cache_hits += 1
        return key, stored
    usage.calls += 1
    try:
        answer = client.complete(messages)
    except MalformedResponse as exc:
        return key, {"malformed": str(exc)}
    usage.tokens_in += answer.tokens_in
    usage.tokens_out += answer.tokens_out
    return key, answer.to_json()
