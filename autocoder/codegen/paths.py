"""Paths of generated files and the templates behind them (light: read while doit loads tasks)."""

from __future__ import annotations

# system-level file (under generated/src, {system} substituted) -> template (None: fixed text)
RUNTIME_FILES = {
    "{system}/__init__.py": "runtime/__init__.py.j2",
    "{system}/__main__.py": "runtime/__main__.py.j2",
    "{system}/models.py": "runtime/models.py.j2",
    "{system}/app.py": "runtime/app.py.j2",
    "{system}/components/__init__.py": "runtime/components_init.py.j2",
    "tests/__init__.py": None,
    "tests/conftest.py": "runtime/conftest.py.j2",
    "tests/test_integration.py": "runtime/test_integration.py.j2",
    "tests/paths/__init__.py": None,
    "tests/paths/conftest.py": "runtime/paths_conftest.py.j2",
    "pyproject.toml": "runtime/pyproject.toml.j2",
}


def module_path(system: str, component: str) -> str:
    return f"{system}/components/{component}.py"


def test_path(component: str) -> str:
    return f"tests/test_{component}.py"


COMPONENT_TEMPLATE = "components/component.py.j2"
COMPONENT_TEST_TEMPLATE = "tests/test_component.py.j2"


def component_templates() -> list[str]:
    """Templates every component renders, whatever its kind (its gen task's file_dep): a kind
    differs only in the IR it gets, which the runtime's kinds interpret."""
    return [COMPONENT_TEMPLATE, COMPONENT_TEST_TEMPLATE]


def runtime_paths(system: str) -> list[str]:
    return [path.format(system=system) for path in RUNTIME_FILES]


PATH_TEST_TEMPLATE = "runtime/test_path.py.j2"  # one test per path (autocoder.flowpaths)


def runtime_templates() -> list[str]:
    return sorted([*(t for t in RUNTIME_FILES.values() if t), PATH_TEST_TEMPLATE])


def unit_test_deps(system: str) -> list[str]:
    """System files a component's own tests import (besides its module and its test file)."""
    return [
        f"{system}/__init__.py",
        f"{system}/components/__init__.py",
        f"{system}/models.py",
        "tests/__init__.py",
        "tests/conftest.py",
    ]
