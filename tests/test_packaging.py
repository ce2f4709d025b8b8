"""The runtime library and a generated system build into wheels offline (no index, no build
isolation), as the deployment stage needs, and the system pins the runtime it was built for."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import autocoder_runtime
from conftest import REPO


def wheel(source: Path, out: Path) -> Path:
    """The wheel the deployment stage builds (autocoder.deploy.wheels: offline, reproducible)."""
    from autocoder.deploy.wheels import build_wheel

    return build_wheel(source, out)


def metadata(path: Path) -> tuple[list[str], dict[str, list[str]]]:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        message = Parser().parsestr(archive.read(meta).decode())
    return names, {key: message.get_all(key) or [] for key in ("Name", "Version", "Requires-Dist")}


def test_runtime_wheel_builds_offline(tmp_path: Path) -> None:
    names, meta = metadata(wheel(REPO / "runtime", tmp_path))
    assert meta["Name"] == ["autocoder-runtime"] and meta["Version"] == [autocoder_runtime.__version__]
    assert "autocoder_runtime/py.typed" in names
    modules = {Path(n).name for n in names if n.startswith("autocoder_runtime/")}
    assert {"app.py", "database.py", "system.py", "kinds.py", "testing.py"} <= modules


def test_generated_system_wheel_pins_the_runtime(tmp_path: Path) -> None:
    project = tmp_path / "telemetry"
    shutil.copytree(
        REPO / "examples" / "telemetry", project, ignore=shutil.ignore_patterns("generated", ".doit*")
    )
    build = subprocess.run(
        [sys.executable, "-m", "autocoder.cli", "build", str(project), "gen"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout[-3000:]
    out = tmp_path / "wheels"
    names, meta = metadata(wheel(project / "generated" / "src", out))
    assert f"autocoder-runtime=={autocoder_runtime.__version__}" in meta["Requires-Dist"]
    assert "telemetry/models.py" in names and "telemetry/components/per_device.py" in names
    assert not [n for n in names if n.startswith("telemetry/") and n.endswith(("runtime.py", "kinds.py"))]


def test_every_pin_of_the_runtime_is_its_one_version() -> None:
    """The version lives in autocoder_runtime/__init__.py alone (runtime/pyproject.toml reads it):
    the build's own pins must move with it, or `pip install -e '.[dev]'` fails after a bump."""
    import tomllib

    runtime = tomllib.loads((REPO / "runtime" / "pyproject.toml").read_text())["project"]
    assert "version" not in runtime and runtime["dynamic"] == ["version"]
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    pins = [r for r in requirements if r.startswith("autocoder-runtime")]
    assert pins == [
        f"autocoder-runtime=={autocoder_runtime.__version__}",
        f"autocoder-runtime[postgres,otlp]=={autocoder_runtime.__version__}",
    ]
