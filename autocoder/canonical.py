"""The one JSON serialisation of every generated file, and content hashes.

Sorted keys, 2-space indent, UTF-8, final newline: same data, same bytes, on any machine and
any PYTHONHASHSEED. That is what makes doit's md5 checks and the content fingerprints work.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(data: Any) -> bytes:
    return (json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()


def compact_json(data: Any) -> str:
    """The compact canonical form: sorted keys, no spaces, UTF-8 text (json's C encoder)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def content_hash(data: Any) -> str:
    """sha256 of the compact canonical form (json's C encoder; the indented form is 10x slower)."""
    return hashlib.sha256(compact_json(data).encode()).hexdigest()
