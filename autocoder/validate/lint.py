"""The lint tier of one component: ruff (check and format), bandit and the AST policy.

Cost matters (it runs once per component): ruff is a native binary (~10 ms a run, no Python
start-up), bandit runs in this process through its API, the AST policy is ours.
"""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

from autocoder.blueprint.models import SecurityPolicy
from autocoder.layout import SOURCES
from autocoder.tools import ruff_binary
from autocoder.validate.ast_policy import check_source
from autocoder.validate.findings import Finding, under

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
    for line in fmt.stdout.splitlines():
        if line.startswith("Would reformat: "):
            findings.append(
                Finding(
                    line.removeprefix("Would reformat: ").strip(),
                    1,
                    1,
                    "ruff",
                    "format",
                    "not formatted as `ruff format` would",
                )
            )
    return findings


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


def lint_files(src: Path, module: str, test: str, security: SecurityPolicy) -> list[Finding]:
    """Every finding on a component's files, named from the project root (`generated/src/...`)."""
    files = [module, test]
    return sorted(
        under(
            SOURCES,
            ruff_findings(src, files)
            + bandit_findings(src, files)
            + policy_findings(src, module, test, security),
        )
    )
