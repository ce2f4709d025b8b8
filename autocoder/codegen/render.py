"""Jinja2 rendering and ruff formatting of generated files.

Templates only print what the Python side decided (see component.py, system.py); the
environment is strict (an undefined name is an error, not an empty string).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import jinja2

from autocoder.codegen.literals import pascal, pyliteral
from autocoder.templates_dir import templates_root
from autocoder.tools import ruff_binary


class GenerationError(Exception):
    """A component or file could not be generated; the message says which and why."""


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_root())),
        bytecode_cache=MachineBytecode(machine_bytecode_dir()),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - renders Python source; user data enters only via `py`
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["py"] = pyliteral
    env.filters["pascal"] = pascal
    return env


class MachineBytecode(jinja2.FileSystemBytecodeCache):
    """Jinja's compiled templates, kept per machine: compiling the component templates costs
    each build process that renders them ~0.05-0.1 s (every worker of a build from scratch,
    every edit's build), loading their code ~1 ms. Jinja files each template's code by its name
    and path and uses it only for the exact source it was compiled from (its checksum, checked
    on every load), in a folder `machine_bytecode_dir` keys by everything else that decides
    the code. Best effort: a folder that cannot be read or written, or a file that does not
    load, means compiling, as without it (jinja writes each file atomically: temp + rename)."""

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception:  # noqa: BLE001 - whatever keeps it from loading (cut short: pickle, marshal): compile
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with contextlib.suppress(OSError):
            os.makedirs(self.directory, exist_ok=True)
            super().dump_bytecode(bucket)


def machine_bytecode_dir() -> str:
    """Beside the run-cache's local store, a folder per Python, Jinja and environment (this
    file's code: the options and filters the templates are compiled with)."""
    import platform

    from autocoder.runcache.cache import machine_folder

    python = f"{platform.python_implementation()} {platform.python_version()}"
    key = f"{python} jinja2=={jinja2.__version__}\n".encode() + Path(__file__).read_bytes()
    return str(machine_folder("jinja", key))


def render(template: str, **context: Any) -> str:
    try:
        return environment().get_template(template).render(**context)
    except jinja2.TemplateError as exc:
        where = f"{exc.filename}:{exc.lineno}" if isinstance(exc, jinja2.TemplateSyntaxError) else template
        raise GenerationError(f"template {where}: {exc}") from None


LINE_LENGTH = 110  # also written into the generated pyproject.toml's [tool.ruff]


def format_python(files: dict[str, str], cache: Path | None = None) -> dict[str, str]:
    """ruff format of generated Python files in one run, ignoring any user configuration, so
    the bytes depend only on the sources. (Templates emit imports already in isort order.)

    `cache`: a JSON file of the last call's {source_digest of a source: its formatted text};
    only the sources not in it are formatted (one edit leaves most of a large system's files as
    they were), and it is rewritten to hold exactly this call's files. Derived data: unreadable
    is empty."""
    if cache is None:
        return _format_python(files)
    from autocoder.canonical import canonical_json
    from autocoder.fsutil import write_if_changed

    digests = {name: source_digest(source) for name, source in files.items()}
    try:
        known = json.loads(cache.read_bytes())
        known = known if isinstance(known, dict) else {}
    except (OSError, ValueError):
        known = {}
    missing = {
        name: files[name] for name, digest in digests.items() if not isinstance(known.get(digest), str)
    }
    formatted = _format_python(missing) if missing else {}
    result = {name: formatted[name] if name in formatted else known[digests[name]] for name in files}
    with contextlib.suppress(OSError):
        cache.parent.mkdir(parents=True, exist_ok=True)
        write_if_changed(
            cache, canonical_json({digests[name]: text for name, text in result.items()}), durable=False
        )
    return result


def source_digest(source: str) -> str:
    """The key of a source's formatted text: its sha256 with the formatter's version and line
    length, so that a cache never serves what another ruff (whose output changes between
    releases) made of it."""
    from autocoder.tools import tool_versions

    return hashlib.sha256(f"{tool_versions()} {LINE_LENGTH}\n{source}".encode()).hexdigest()


def _format_python(files: dict[str, str]) -> dict[str, str]:
    with tempfile.TemporaryDirectory(prefix="autocoder-fmt-") as tmp:
        root = Path(tmp)
        for index, (_name, source) in enumerate(sorted(files.items())):
            (root / f"f{index}.py").write_text(source)
        run = subprocess.run(  # noqa: S603 - fixed binary and arguments
            [
                ruff_binary(),
                "format",
                "--isolated",
                "--no-cache",
                "--quiet",
                "--line-length",
                str(LINE_LENGTH),
                str(root),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if run.returncode != 0:
            names = {f"f{i}.py": name for i, name in enumerate(sorted(files))}
            detail = run.stderr.strip()
            for temp, name in names.items():
                detail = detail.replace(str(root / temp), name)
            raise GenerationError(f"the generated source does not parse: {detail}")
        return {name: (root / f"f{i}.py").read_text() for i, name in enumerate(sorted(files))}
