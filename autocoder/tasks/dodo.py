"""Everything a project's dodo.py needs: `from autocoder.tasks.dodo import *`.

`autocoder init` writes that one line into a blueprint directory; `autocoder build` loads this
module directly, so a project works with or without its own dodo.py.
"""

from autocoder.runcache.tasks import cached
from autocoder.tasks import dispatch
from autocoder.tasks.compile_tasks import task_check, task_ir
from autocoder.tasks.deploy_tasks import task_deploy, task_image, task_sign
from autocoder.tasks.gen_tasks import task_gen
from autocoder.tasks.reporter import AutocoderReporter
from autocoder.tasks.validate_tasks import (
    task_bench,
    task_lint,
    task_policy,
    task_report,
    task_test,
    task_typecheck,
)

# Every task goes through the run-cache (autocoder/runcache): on a hit its targets are restored
# instead of running its actions. One place, so the task generators stay unaware of it.
task_check, task_ir, task_gen = cached(task_check), cached(task_ir), cached(task_gen)
task_lint, task_test, task_bench = cached(task_lint), cached(task_test), cached(task_bench)
task_typecheck, task_policy, task_report = cached(task_typecheck), cached(task_policy), cached(task_report)
# deploy:plan, the render groups, wheels (byte-deterministic: SOURCE_DATE_EPOCH) and validate;
# `sign` and `image` have no targets and always run through their own up-to-date checks
task_deploy = cached(task_deploy)

# doit runs gen:runtime, typecheck and test:integration before the other tasks waiting for a
# process (tasks/dispatch.py)
dispatch.install()

DOIT_CONFIG = {
    # sqlite3: atomic and fast; doit's default dbm may fall back to the slow dbm.dumb.
    "backend": "sqlite3",
    "dep_file": ".doit.db",
    "default_tasks": [
        *("check", "ir", "gen", "lint", "typecheck", "test", "bench", "policy", "report"),
        "deploy",  # stage 4: deployments/ rendered and validated offline
    ],
    "verbosity": 1,
    # the console reporter plus a summary table; `--reporter json` etc. still work
    "reporter": AutocoderReporter,
}

__all__ = [
    "DOIT_CONFIG",
    "task_bench",
    "task_check",
    "task_deploy",
    "task_gen",
    "task_image",
    "task_ir",
    "task_lint",
    "task_policy",
    "task_report",
    "task_sign",
    "task_test",
    "task_typecheck",
]
