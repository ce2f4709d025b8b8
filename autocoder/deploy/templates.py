"""The Jinja environment of the deployment templates (templates/deploy/)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from autocoder.templates_dir import templates_root

if TYPE_CHECKING:
    import jinja2

# template_paths() is called while doit loads the tasks: jinja2 is imported only to render.

TEMPLATES = ("Dockerfile.j2", "dockerignore.j2")


def template_paths() -> list[str]:
    return [str(templates_root() / "deploy" / name) for name in TEMPLATES]


@functools.cache
def _environment() -> jinja2.Environment:
    import jinja2

    # not HTML: values go through tojson
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_root() / "deploy")),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701
    )


def render_template(name: str, values: dict[str, Any]) -> str:
    return _environment().get_template(name).render(**values)
