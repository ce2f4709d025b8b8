"""The LLM provider's fingerprint as the task list needs it, without importing the provider.

Every doit run (a no-op too) needs the provider's fingerprint: it is part of the codegen
fingerprint and of the run-cache's fields. Computing it imports the settings and provider
modules, whose pydantic models cost more CPU than loading 2,000 tasks. So the value is memoised
in generated/.autocoder/provider.json, keyed by everything it is computed from: the llm
package's code and Autocoder's version, deployment.yaml's bytes (its `llm:` block) and the
AUTOCODER_LLM_* / OPENAI_* variables (an API key only as set or not: no secret, not even its
hash, is written to disk; the fingerprint never contains it). Light to import on purpose.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from pathlib import Path

import autocoder
from autocoder.layout import ARCHITECTURE, DEPLOYMENT, GENERATED

MEMO = f"{GENERATED}/.autocoder/provider.json"
ENV_PREFIXES = ("AUTOCODER_LLM_", "OPENAI_")  # settings.ENV_PREFIX and settings.FALLBACK_ENV's


@functools.cache
def _code_digest() -> str:
    """Autocoder's version and the llm package's code (settings, prompt version, provider)."""
    digest = hashlib.sha256(autocoder.__version__.encode())
    for path in sorted((Path(__file__).parent).glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def memo_key(directory: Path, env: dict[str, str] | None = None) -> str:
    """Hash of every input of llm.provider.provider_fingerprint(directory)."""
    env = dict(os.environ) if env is None else env
    digest = hashlib.sha256(_code_digest().encode())
    try:
        digest.update(hashlib.sha256((directory / DEPLOYMENT).read_bytes()).digest())
    except OSError as exc:
        digest.update(f"unreadable:{type(exc).__name__}".encode())
    for name in sorted(n for n in env if n.startswith(ENV_PREFIXES)):
        value = env[name]
        shown = ("set" if value else "") if name.endswith("API_KEY") else value
        digest.update(f"\0{name}={shown}".encode())
    return digest.hexdigest()


def provider_fingerprint_memo(directory: Path) -> str:
    """llm.provider.provider_fingerprint(directory), from the memo when its key matches."""
    key = memo_key(directory)
    memo = directory / MEMO
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        data = json.loads(memo.read_text())
        if data["key"] == key and isinstance(data["fingerprint"], str):
            return str(data["fingerprint"])
    from autocoder.canonical import canonical_json
    from autocoder.fsutil import confined, write_if_changed
    from autocoder.llm.provider import provider_fingerprint

    fingerprint = provider_fingerprint(directory)
    if not (directory / ARCHITECTURE).is_file():
        return fingerprint  # not a project (a command run elsewhere): nothing written there
    with contextlib.suppress(OSError):  # a memo: failing to write it (or an unsafe tree) costs time only
        data = canonical_json({"key": key, "fingerprint": fingerprint})
        write_if_changed(confined(directory, Path(MEMO)), data, durable=False)
    return fingerprint
