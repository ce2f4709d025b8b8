"""The runtime library generated systems depend on (autocoder_runtime), as the build sees it."""

from __future__ import annotations

import functools
import hashlib
from importlib import metadata
from pathlib import Path


@functools.cache
def runtime_fingerprint() -> str:
    """Version and code of the installed autocoder_runtime: generated code and its validation
    results depend on it as much as on the generator."""
    import autocoder_runtime

    digest = hashlib.sha256(autocoder_runtime.__version__.encode())
    for path in sorted(Path(autocoder_runtime.__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    # its declared dependencies too (the runtime wheel and constraints.txt carry them)
    requires = metadata.requires("autocoder-runtime") or []
    digest.update("\n".join(sorted(requires)).encode())
    return digest.hexdigest()
