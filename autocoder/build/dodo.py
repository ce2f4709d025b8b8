"""Everything a project's dodo.py needs: `from autocoder.build.dodo import *`.

`autocoder init` writes that one line into a blueprint directory; `autocoder build` loads this
module directly, so a project works with or without its own dodo.py.
"""

from autocoder.build.gen_tasks import task_gen
from autocoder.build.tasks import task_check, task_ir

DOIT_CONFIG = {
    # sqlite3: atomic and fast; doit's default dbm may fall back to the slow dbm.dumb.
    "backend": "sqlite3",
    "dep_file": ".doit.db",
    "default_tasks": ["check", "ir", "gen"],
    "verbosity": 1,
}

__all__ = ["DOIT_CONFIG", "task_check", "task_gen", "task_ir"]
