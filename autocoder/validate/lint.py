"""The lint tier of one component: ruff (check and format), bandit and the AST policy.

Cost matters (it runs once per component): ruff is a native binary (~10 ms a run, no Python
start-up), bandit runs in this process through its API, the AST policy is ours. In a build from
scratch ruff and bandit run once over several pending components' files (validate/siblings.py):
the two ruff starts and bandit's set-up (~35 ms of a ~45 ms task) are then paid once a batch.
Both ruff processes run while bandit and the policy do (RuffRun), and bandit tokenizes only the
files that could hold a `# nosec` comment (_may_have_nosec): the same findings, sooner.
"""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autocoder.blueprint.models import SecurityPolicy
from autocoder.layout import SOURCES
from autocoder.tools import ruff_binary
from autocoder.validate.ast_policy import check_source
from autocoder.validate.findings import Finding, under

if TYPE_CHECKING:
    from autocoder.validate.siblings import Siblings

BANDIT_FAILING = ("MEDIUM", "HIGH")  # lower bandit findings are reported, not failing


def ruff_findings(src: Path, files: list[str]) -> list[Finding]:
    """ruff check (rules from the generated pyproject.toml) and ruff format --check."""
    return RuffRun(src, files).findings()


class RuffRun:
    """`ruff check` and `ruff format --check` on `files`, both started at once when this is made
    (two processes: ruff has no command doing both); `findings()` waits for them. The lint tier
    runs bandit and the AST policy meanwhile, so the ruff processes' start-up and work (~10-30 ms
    of wall time each) overlap with bandit's CPU instead of following it."""

    def __init__(self, src: Path, files: list[str]) -> None:
        self.src = src
        config = ["--config", str(src / "pyproject.toml")]
        check = [
            ruff_binary(),
            "check",
            "--no-cache",
            "--output-format",
            "json",
            "--exit-zero",
            *config,
            *files,
        ]
        self.check = _start(check, src)
        self.format = _start([ruff_binary(), "format", "--no-cache", "--check", *config, *files], src)

    def stop(self) -> None:
        """Kill both processes (the caller failed before it needed their findings)."""
        for process in (self.check, self.format):
            process.kill()
            process.communicate()

    def findings(self) -> list[Finding]:
        checked, _ = self.check.communicate()
        formatted, _ = self.format.communicate()
        findings = []
        for item in json.loads(checked or "[]"):
            path = Path(item["filename"]).resolve().relative_to(self.src.resolve()).as_posix()
            findings.append(
                Finding(
                    path,
                    item["location"]["row"],
                    item["location"]["column"],
                    "ruff",
                    item["code"] or "syntax",
                    item["message"],
                )
            )
        for path in unformatted(formatted):
            findings.append(Finding(path, 1, 1, "ruff", "format", "not formatted as `ruff format` would"))
        return findings


def _start(command: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 - fixed binary, generated file names
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def unformatted(output: str) -> list[str]:
    """The files `ruff format --check` would reformat, from its report: `Would reformat: PATH`
    lines (ruff before 0.15 or so), or an `unformatted: ...` diagnostic whose next line is
    ` --> PATH:ROW:COL` (later ruff, which no longer prints the former: without this, ruff 0.17
    reported no unformatted file at all)."""
    paths = []
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Would reformat: "):
            paths.append(line.removeprefix("Would reformat: ").strip())
        elif (
            line.startswith("unformatted:") and i + 1 < len(lines) and lines[i + 1].lstrip().startswith("-->")
        ):
            paths.append(lines[i + 1].split("-->", 1)[1].strip().rsplit(":", 2)[0])
    return paths


def bandit_findings(src: Path, files: list[str]) -> list[Finding]:
    """bandit, in process (no interpreter start-up per component). Its results as one bandit run
    over `files` gives them (bandit scans its files in sorted order, each on its own)."""
    logging.getLogger("bandit").setLevel(logging.ERROR)
    paths = [str(src / f) for f in files]
    with_nosec: list[str] = []
    without: list[str] = []
    for path in paths:
        (with_nosec if _may_have_nosec(path) else without).append(path)
    issues = _bandit_issues(with_nosec, ignore_nosec=False) + _bandit_issues(without, ignore_nosec=True)
    order = {path: i for i, path in enumerate(sorted(paths))}
    findings = []
    for issue in sorted(issues, key=lambda issue: order[issue.fname]):  # stable: a file's own order kept
        data = issue.as_dict(with_code=False)
        path = Path(data["filename"]).resolve().relative_to(src.resolve()).as_posix()
        severity = "error" if data["issue_severity"] in BANDIT_FAILING else "note"
        findings.append(
            Finding(
                path,
                data["line_number"],
                data["col_offset"] + 1,
                "bandit",
                data["test_id"],
                f"{data['issue_text']} (severity {data['issue_severity'].lower()})",
                severity,
            )
        )
    return findings


def _may_have_nosec(path: str) -> bool:
    """Whether bandit could find a `# nosec` comment in the file at `path`: its bytes hold
    "nosec" (bandit's pattern, `#\\s*nosec`, is case-sensitive), or they cannot be read here (then
    bandit decides, as always). For any other file bandit's `ignore_nosec` gives exactly the
    same issues: with no such comment its map of nosec lines holds nothing but None, and
    bandit treats None as no comment. ignore_nosec spares bandit tokenizing the file (only to
    find those comments): ~17 % of its time on a generated file."""
    try:
        with open(path, "rb") as file:
            return b"nosec" in file.read()
    except OSError:
        return True


def _bandit_issues(paths: list[str], *, ignore_nosec: bool) -> list[Any]:
    """bandit's issues (with default configuration and every plugin) over the files at `paths`."""
    if not paths:
        return []
    from bandit.core import config as bandit_config
    from bandit.core import manager as bandit_manager

    manager = bandit_manager.BanditManager(
        bandit_config.BanditConfig(), "file", quiet=True, ignore_nosec=ignore_nosec
    )
    manager.discover_files(paths, False)
    manager.run_tests()
    issues: list[Any] = manager.get_issue_list()
    return issues


def policy_findings(src: Path, module: str, test: str, security: SecurityPolicy) -> list[Finding]:
    findings = check_source((src / module).read_text(), module, security, system_code=True)
    findings += check_source((src / test).read_text(), test, security, system_code=False)
    return findings


def tool_findings(src: Path, files: list[str]) -> list[Finding]:
    """ruff's and bandit's findings on `files` (paths relative to `src`). Both judge each file on
    its own, so a run over several components' files gives each file the findings a run over
    its component's files alone gives (validate/siblings.py batches on that; tested)."""
    return _beside_ruff(src, files, lambda: bandit_findings(src, files))


def _beside_ruff(src: Path, files: list[str], work: Callable[[], list[Finding]]) -> list[Finding]:
    """ruff's findings on `files`, then work()'s: ruff runs (RuffRun) while `work` does, and is
    killed when `work` raises."""
    ruff = RuffRun(src, files)
    try:
        found = work()
    except BaseException:
        ruff.stop()
        raise
    return ruff.findings() + found


def tool_findings_split(src: Path, groups: dict[str, list[str]]) -> dict[str, list[Finding]]:
    """`tool_findings` of each group of files (a component's), from one ruff and bandit run over
    all of them. A finding on a file named in no group is an error (ValueError): the batch is
    then not used."""
    owner = {file: key for key, files in groups.items() for file in files}
    split: dict[str, list[Finding]] = {key: [] for key in groups}
    for finding in tool_findings(src, list(owner)):
        if finding.path not in owner:
            raise ValueError(f"a finding on {finding.path}, which no component of the batch owns")
        split[owner[finding.path]].append(finding)
    return split


def batched_tool_findings(
    directory: Path, src: Path, group: Siblings, name: str, files_of: Callable[[str], list[str]]
) -> list[Finding]:
    """`tool_findings` on component `name`'s files (`files_of(name)`), possibly from one run over
    several pending components' files (validate/siblings.py), with the same result."""
    from autocoder.validate.siblings import run_batched

    def batch(names: list[str]) -> dict[str, Any]:
        split = tool_findings_split(src, {member: files_of(member) for member in names})
        return {member: [f.to_json() for f in found] for member, found in split.items()}

    def alone() -> list[dict[str, Any]]:
        return [f.to_json() for f in tool_findings(src, files_of(name))]

    return [Finding(**item) for item in run_batched(directory, group, name, batch, alone)]


def lint_files(
    src: Path, module: str, test: str, security: SecurityPolicy, tools: list[Finding] | None = None
) -> list[Finding]:
    """Every finding on a component's files, named from the project root (`generated/src/...`);
    `tools`: ruff's and bandit's findings on them when already known (from a batch)."""
    if tools is not None:
        return sorted(under(SOURCES, tools + policy_findings(src, module, test, security)))
    files = [module, test]
    found = _beside_ruff(
        src, files, lambda: bandit_findings(src, files) + policy_findings(src, module, test, security)
    )
    return sorted(under(SOURCES, found))
