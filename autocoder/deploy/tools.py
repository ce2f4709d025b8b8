"""checkov in a tool environment of its own, which Autocoder installs and finds by itself.

checkov cannot live in Autocoder's environment: its newest release (3.3.30) still pins
`packaging<24` and `cyclonedx-python-lib<8`, which Autocoder needs newer (installed beside it,
pip would downgrade both). So `autocoder tools install` (part of the README's first command and
of CI) creates a virtual environment for it with uv (a ~10 s install, where pip took minutes)
under the user's cache directory, keyed by checkov's version and Python's; the build finds it
there by itself and never touches the network. The version is pinned exactly: a new checkov
release brings new checks, and a build's findings must not change under it unannounced.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHECKOV_VERSION = "3.3.30"
CHECKOV_ENV = "AUTOCODER_CHECKOV"  # unset: the managed environment; `off`; or an executable's path
TOOLS_DIR_ENV = "AUTOCODER_TOOLS_DIR"
INSTALL_COMMAND = "autocoder tools install"
MARKER = "autocoder-tool.json"  # written last, inside the environment, before it is moved in place


class ToolInstallError(Exception):
    """The tool environment could not be created (the message says which step and why)."""


def tools_dir() -> Path:
    """AUTOCODER_TOOLS_DIR, else $XDG_CACHE_HOME/autocoder-tools, else ~/.cache/autocoder-tools
    (beside, not inside, the run-cache: clearing one leaves the other)."""
    if os.environ.get(TOOLS_DIR_ENV):
        return Path(os.environ[TOOLS_DIR_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "autocoder-tools"


def checkov_env() -> Path:
    """The managed environment of CHECKOV_VERSION for this Python (its C extensions are built
    for one minor version)."""
    return tools_dir() / f"checkov-{CHECKOV_VERSION}-py{sys.version_info.major}.{sys.version_info.minor}"


def managed_checkov() -> list[str] | None:
    """The command that runs the managed checkov, or None when it is not installed (an
    environment without its marker is a half-finished install and does not count)."""
    env = checkov_env()
    python = env / "bin" / "python"
    if not (env / MARKER).is_file() or not python.exists():
        return None
    # what checkov's own console script does, without its absolute shebang
    return [str(python), "-W", "ignore::SyntaxWarning", "-m", "checkov.main"]


def install_checkov(log: bool = True) -> Path:
    """Create the managed checkov environment unless it exists; return its path. The
    environment is built in a temporary folder beside its final place and renamed into it, so
    an interrupted install leaves nothing the build would take for checkov."""
    final = checkov_env()
    if managed_checkov() is not None:
        if log:
            print(f"checkov {CHECKOV_VERSION}: already installed in {final}")
        return final
    uv = _uv()
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        _run([uv, "venv", "--quiet", "--python", sys.executable, str(work)], "create the environment")
        python = work / "bin" / "python"
        _run(
            [uv, "pip", "install", "--quiet", "--python", str(python)] + [f"checkov=={CHECKOV_VERSION}"],
            f"install checkov {CHECKOV_VERSION} (needs the package index)",
        )
        version = _run(
            [str(python), "-c", "import importlib.metadata as m; print(m.version('checkov'))"],
            "read the installed version",
        ).strip()
        if version != CHECKOV_VERSION:
            raise ToolInstallError(f"uv installed checkov {version}, not {CHECKOV_VERSION}")
        (work / MARKER).write_text(json.dumps({"tool": "checkov", "version": version}) + "\n")
        try:
            work.rename(final)
        except OSError:  # another install finished first: keep its environment
            if managed_checkov() is None:
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if log:
        print(f"checkov {CHECKOV_VERSION}: installed in {final}")
    return final


def _uv() -> str:
    """uv from its wheel (a dependency of Autocoder), else from PATH."""
    try:
        import uv

        return str(uv.find_uv_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found is None:
            raise ToolInstallError("uv is not installed: pip install 'uv>=0.5'") from None
        return found


def _run(command: list[str], step: str) -> str:
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=900)  # noqa: S603 - fixed argv
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolInstallError(f"could not {step}: {exc}") from None
    if run.returncode != 0:
        detail = (run.stderr or run.stdout).strip()[-1500:]
        raise ToolInstallError(f"could not {step} (exit {run.returncode}): {detail}")
    return run.stdout


def missing_checkov_message() -> str:
    """The one line a build prints when checkov is not installed."""
    return (
        f"checkov {CHECKOV_VERSION} is not installed: run `{INSTALL_COMMAND}` (once, with network; "
        f"into {checkov_env()}), or set {CHECKOV_ENV}=off to build without it"
    )


CHECKOV_OFF = "checkov: off"


def checkov_command() -> tuple[list[str] | None, str]:
    """How checkov runs, and the setting deploy:validate depends on (a file dependency, so a
    change re-runs the validation; it names the version, not a path, so the run-cache's key is
    the same on every machine). AUTOCODER_CHECKOV unset or empty: the environment Autocoder
    manages (this module); `off`: no checkov (tests that build deployments for
    another reason, and builds that say so); anything else: the path of a checkov executable."""
    given = os.environ.get(CHECKOV_ENV, "").strip()
    if given.lower() == "off":
        return None, CHECKOV_OFF
    if given:
        binary = Path(given).expanduser()
        versions = sorted(
            p.name for p in binary.resolve().parent.parent.glob("lib/python*/site-packages/checkov-*")
        )
        return [str(binary)], f"checkov: {binary} {' '.join(versions)}"
    command = managed_checkov()
    if command is None:
        return None, "checkov: not installed"
    return command, f"checkov {CHECKOV_VERSION} (managed)"


def checkov_setting() -> str:
    """The setting alone: deploy:validate's file dependency (tasks/deploy_tasks.py)."""
    return checkov_command()[1]
