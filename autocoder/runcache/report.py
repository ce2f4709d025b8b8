"""What the run-cache did in a build, for the reporter: one summary line after the table, and
(with `autocoder build --explain`) the reason next to each task as it starts."""

from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar


class RunCacheReport:
    """Mixin for a doit reporter (before ConsoleReporter in the bases)."""

    # task name -> why it runs, set by `autocoder build --explain` before the build starts
    reasons: ClassVar[dict[str, list[str]]] = {}
    outstream: Any

    def write_reasons(self, task: Any) -> None:
        """Under the line of a task that starts: why it runs (called by the reporter)."""
        for reason in type(self).reasons.get(task.name, []):
            self.outstream.write(f"     why: {reason}\n")

    def initialize(self, tasks: Any, selected_tasks: Any) -> None:
        self.__dict__["_runcache_tasks"] = tasks
        super().initialize(tasks, selected_tasks)  # type: ignore[misc]

    def add_success(self, task: Any) -> None:
        values = getattr(task, "values", None) or {}
        outcome = values.get("runcache")
        if isinstance(outcome, str):
            counts = self.__dict__.setdefault("_runcache", Counter())
            counts[outcome] += 1
            counts["via pack"] += bool(values.get("runcache_pack"))
            if outcome.startswith("restored:"):
                self.__dict__.setdefault("_runcache_restored", set()).add(task.name)
        super().add_success(task)  # type: ignore[misc]

    def restored_tasks(self) -> set[str]:
        """The tasks this run restored from the run-cache (the summary table marks them)."""
        restored: set[str] = self.__dict__.get("_runcache_restored", set())
        return restored

    def write_runcache_pack(self) -> None:
        """After a build that stored entries, or restored some one by one from the remote (no
        pack, or an incomplete one): put the pack of every entry it used on the remote, so the
        next clone with this blueprint restores with one request (runcache/pack.py). The keys
        come from the tasks' values: those that ran now and those found up to date."""
        counts: Counter[str] = self.__dict__.get("_runcache", Counter())
        if not counts["stored"] and counts["restored:remote"] <= counts["via pack"]:
            return
        from pathlib import Path

        from autocoder.runcache import cache as runcache

        cache = runcache.from_environment(Path.cwd())
        if cache is None or cache.remote is None or cache.readonly:
            return
        tasks = self.__dict__.get("_runcache_tasks") or {}
        keys = {
            t.values.get("runcache_key")
            for t in tasks.values()
            if isinstance(getattr(t, "values", None), dict)
        }
        packed = cache.write_pack({k for k in keys if isinstance(k, str)})
        if packed:
            self.__dict__["_runcache_packed"] = packed

    def runcache_summary(self) -> str | None:
        """`run-cache: 12 restored (local 2, remote 10), 3 run and stored`, or None."""
        counts: Counter[str] = self.__dict__.get("_runcache", Counter())
        restored = {k.split(":", 1)[1]: n for k, n in counts.items() if k.startswith("restored:")}
        parts = []
        if restored:
            where = ", ".join(f"{origin} {n}" for origin, n in sorted(restored.items()))
            parts.append(f"{sum(restored.values())} restored ({where})")
        if counts["stored"]:
            parts.append(f"{counts['stored']} run and stored")
        if counts["not stored"]:
            parts.append(f"{counts['not stored']} run, not stored")
        if counts["via pack"]:
            parts.append(f"{counts['via pack']} of them unpacked from the remote's build pack")
        if self.__dict__.get("_runcache_packed"):
            parts.append(f"build pack of {self.__dict__['_runcache_packed']} entries written to the remote")
        return "run-cache: " + ", ".join(parts) if parts else None

    def write_runcache_summary(self) -> None:
        self.write_runcache_pack()
        line = self.runcache_summary()
        if line:
            self.outstream.write(line + "\n")
