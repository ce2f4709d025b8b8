"""tasks/prefetch.py: the imports `check` starts while it waits for the warm worker's child.

Each case runs in a fresh interpreter: what it checks is which modules a process has imported,
and when, which this test process (that has imported everything already) cannot show.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# a module whose import takes a while: the prefetch thread is still inside it when the code
# under test runs (every case finishes far within the sleep, or waits for it on purpose)
SLOW = "import time\ntime.sleep({seconds})\nVALUE = 1\n"


def run(code: str, folder: Path, seconds: float = 1.0) -> None:
    (folder / "slow_module.py").write_text(SLOW.format(seconds=seconds))
    script = f"import sys\nsys.path.insert(0, {str(folder)!r})\n" + textwrap.dedent(code)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)


def test_the_prefetched_modules_exist_and_import_in_a_fresh_process(tmp_path: Path) -> None:
    """A name in warm_compile.PREFETCH that no longer exists (a module moved) would silently
    prefetch nothing."""
    run(
        """
        from autocoder.tasks import prefetch
        from autocoder.tasks.warm_compile import PREFETCH
        prefetch.start(PREFETCH)
        prefetch._RUN[0].thread.join(120)
        missing = [name for name in PREFETCH if name not in sys.modules]
        assert not missing, missing
        """,
        tmp_path,
    )


def test_a_stopped_prefetch_finishes_the_import_under_way_and_starts_no_other(tmp_path: Path) -> None:
    run(
        """
        from autocoder.tasks import prefetch
        interval = sys.getswitchinterval()
        prefetch.start(["slow_module", "json.tool"])
        assert sys.getswitchinterval() < interval  # the waiting thread gets the GIL back sooner
        prefetch.stop()  # returns at once: the import goes on
        assert "VALUE" not in vars(sys.modules.get("slow_module", sys))
        prefetch.settle()
        assert sys.modules["slow_module"].VALUE == 1
        assert "json.tool" not in sys.modules
        assert sys.getswitchinterval() == interval and not prefetch._RUN
        prefetch.settle()  # nothing under way: nothing to do
        """,
        tmp_path,
    )


def test_a_fork_waits_for_the_import_under_way(tmp_path: Path) -> None:
    """Without it the child would inherit the module's import lock, held by a thread that does
    not exist there, and hang importing the module."""
    run(
        """
        import os
        from autocoder.tasks import prefetch
        prefetch.start(["slow_module"])
        pid = os.fork()
        if pid == 0:
            import slow_module
            os._exit(0 if slow_module.VALUE == 1 else 1)
        assert sys.modules["slow_module"].VALUE == 1  # imported before the fork
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        """,
        tmp_path,
    )


@pytest.mark.parametrize(("task", "waits"), [("gen:c", True), ("ir", False)])
def test_task_actions_but_irs_wait_for_the_import_under_way(tmp_path: Path, task: str, waits: bool) -> None:
    """The run-cache wrapper settles before the action; `ir`'s action (the plan `check`'s
    child made: nothing to import) runs while the import finishes."""
    run(
        f"""
        import os
        os.environ["AUTOCODER_CACHE"] = "off"
        from pathlib import Path
        from doit.task import Task
        from autocoder.runcache.tasks import run_cached
        from autocoder.tasks import prefetch
        seen = []
        def action():
            seen.append(hasattr(sys.modules.get("slow_module"), "VALUE"))
        prefetch.start(["slow_module"])
        prefetch.stop()
        task = Task({task!r}, [(action, [])], targets=["out"])
        run_cached(Path({str(tmp_path)!r}), [(action, [])], task)
        assert seen == [{waits!r}], seen
        prefetch.settle()
        """,
        tmp_path,
        seconds=3.0,
    )
