"""Paths as the user can open them: relative to the directory they ran the command in.

Diagnostics and findings are positioned relative to the project (`architecture.yaml`,
`generated/src/...`). `autocoder check shop` must print `shop/architecture.yaml:31:21`, and
`autocoder build shop` too, although doit runs its tasks inside the project: the CLI records
how the user named the project in AUTOCODER_PROJECT_SHOWN_AS, which the tasks read. A plain
`doit` run inside the project leaves it unset, and the project-relative paths are right as
they are.
"""

from __future__ import annotations

import os
from pathlib import Path

SHOWN_ENV = "AUTOCODER_PROJECT_SHOWN_AS"


def as_given(directory: Path) -> str:
    """The project folder as the user named it, relative to the current directory when it is
    inside it ('' for the current directory itself)."""
    path = Path(os.path.normpath(directory))
    if path.is_absolute():
        try:
            path = path.relative_to(Path.cwd())
        except ValueError:
            return str(path)
    text = path.as_posix()
    return "" if text == "." else text


def shown(relative: str, project: str | None = None) -> str:
    """`relative` (a path from the project root, maybe with a `#fragment`) as the user opens
    it: under `project` (as_given's answer), or under the folder the CLI recorded."""
    prefix = os.environ.get(SHOWN_ENV, "") if project is None else project
    return f"{prefix}/{relative}" if prefix else relative
