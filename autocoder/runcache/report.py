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

    def add_success(self, task: Any) -> None:
        outcome = (getattr(task, "values", None) or {}).get("runcache")
        if isinstance(outcome, str):
            self.__dict__.setdefault("_runcache", Counter())[outcome] += 1
        super().add_success(task)  # type: ignore[misc]

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
        return "run-cache: " + ", ".join(parts) if parts else None

    def write_runcache_summary(self) -> None:
        line = self.runcache_summary()
        if line:
            self.outstream.write(line + "\n")
