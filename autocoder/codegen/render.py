"""Jinja2 rendering and ruff formatting of generated files.

Templates only print what the Python side decided (see component.py, system.py); the
environment is strict (an undefined name is an error, not an empty string).
"""

from __future__ import annotations

import functools
import subprocess
from typing import Any

import jinja2

from autocoder.codegen.literals import pascal, pyliteral
from autocoder.templates_dir import templates_root


class GenerationError(Exception):
    """A component or file could not be generated; the message says which and why."""


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_root())),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - renders Python source; user data enters only via `py`
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["py"] = pyliteral
    env.filters["pascal"] = pascal
    return env


def render(template: str, **context: Any) -> str:
    try:
        return environment().get_template(template).render(**context)
    except jinja2.TemplateError as exc:
        where = f"{exc.filename}:{exc.lineno}" if isinstance(exc, jinja2.TemplateSyntaxError) else template
        raise GenerationError(f"template {where}: {exc}") from None


@functools.cache
def ruff_binary() -> str:
    from ruff.__main__ import find_ruff_bin

    return str(find_ruff_bin())


LINE_LENGTH = 110  # also written into the generated pyproject.toml's [tool.ruff]


def format_python(source: str, filename: str, system: str) -> str:
    """Sort imports and format with ruff, ignoring any user config: deterministic bytes."""
    first_party = f"lint.isort.known-first-party = [{pyliteral(system)}]"
    fix = ["check", "--select", "I", "--fix-only", "--exit-zero", "--config", first_party]
    return _ruff(["format"], _ruff(fix, source, filename), filename)


def _ruff(command: list[str], source: str, filename: str) -> str:
    run = subprocess.run(  # noqa: S603 - fixed binary, source on stdin
        [
            ruff_binary(),
            *command,
            "--isolated",
            "--quiet",
            "--line-length",
            str(LINE_LENGTH),
            "--stdin-filename",
            filename,
            "-",
        ],
        input=source,
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode != 0:
        raise GenerationError(f"{filename}: the generated source does not parse: {run.stderr.strip()}")
    return run.stdout
