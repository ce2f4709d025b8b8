"""The lint tier of one component: ruff (check and format), bandit and the AST policy.

Cost matters (it runs once per component): ruff is a native binary (~10 ms a run, no Python
start-up), bandit runs in this process through its API, the AST policy is ours. In a build from
scratch ruff and bandit run once over several pending components' files (validate/siblings.py):
the two ruff starts and bandit's set-up (~35 ms of a ~45 ms task) are then paid once a batch.
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
    config = ["--config", str(src / "pyproject.toml")]
    check = subprocess.run(  # noqa: S603 - fixed binary, generated file names
        [ruff_binary(), "check", "--no-cache", "--output-format", "json", "--exit-zero", *config, *files],
        cwd=src,
        capture_output=True,
        text=True,
        check=False,
    )
    findings = []
    for item in json.loads(check.stdout or "[]"):
        path = Path(item["filename"]).resolve().relative_to(src.resolve()).as_posix()
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
    fmt = subprocess.run(  # noqa: S603
        [ruff_binary(), "format", "--no-cache", "--check", *config, *files],
        cwd=src,
        capture_output=True,
        text=True,
        check=False,
    )
    for path in unformatted(fmt.stdout):
        findings.append(Finding(path, 1, 1, "ruff", "format", "not formatted as `ruff format` would"))
    return findings


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
    """bandit, in process (no interpreter start-up per component)."""
    from bandit.core import config as bandit_config
    from bandit.core import manager as bandit_manager

    logging.getLogger("bandit").setLevel(logging.ERROR)
    manager = bandit_manager.BanditManager(bandit_config.BanditConfig(), "file", quiet=True)
    manager.discover_files([str(src / f) for f in files], False)
    manager.run_tests()
    findings = []
    for issue in manager.get_issue_list():
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


def policy_findings(src: Path, module: str, test: str, security: SecurityPolicy) -> list[Finding]:
    findings = check_source((src / module).read_text(), module, security, system_code=True)
    findings += check_source((src / test).read_text(), test, security, system_code=False)
    return findings


def tool_findings(src: Path, files: list[str]) -> list[Finding]:
    """ruff's and bandit's findings on `files` (paths relative to `src`). Both judge each file on
    its own, so a run over several components' files gives each file the findings a run over
    its component's files alone gives (validate/siblings.py batches on that; tested)."""
    return ruff_findings(src, files) + bandit_findings(src, files)


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
    if tools is None:
        tools = tool_findings(src, [module, test])
    return sorted(under(SOURCES, tools + policy_findings(src, module, test, security)))
