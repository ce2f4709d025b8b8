"""The `autocoder` command line, run as a user runs it: a subprocess in a temporary directory."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLE

from autocoder.schemas_gen import SCHEMAS

BAD_YAML = "schema_version: '1.0.0'\nsystem:\n  name: shop\n  oops: [1,\n"


def cli(*args: str, cwd: Path | None = None, stdout: int | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "autocoder.cli", *args],
        cwd=cwd,
        stdout=subprocess.PIPE if stdout is None else stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
    )


def project(tmp_path: Path, name: str = "p", architecture: str | None = None) -> Path:
    directory = tmp_path / name
    directory.mkdir()
    (directory / "deployment.yaml").write_bytes((EXAMPLE / "deployment.yaml").read_bytes())
    arch = (EXAMPLE / "architecture.yaml").read_text() if architecture is None else architecture
    (directory / "architecture.yaml").write_text(arch)
    return directory


def with_a_warning(tmp_path: Path) -> Path:
    """The example without its rate limit override: AC112, a warning (an error under --strict)."""
    directory = project(tmp_path)
    deploy = directory / "deployment.yaml"
    override = "component_overrides:\n  orders_api: {capabilities: {rate_limit: {rate: 1000, burst: 2000}}}\n"
    assert override in deploy.read_text()
    deploy.write_text(deploy.read_text().replace(override, ""))
    return directory


def assert_no_doit_internals(run: subprocess.CompletedProcess) -> None:
    output = run.stdout + run.stderr
    for leak in ("Traceback", "CmdOption", "Error parsing", "Invalid parameter", "TaskFailed", "#####"):
        assert leak not in output, output


# ----------------------------------------------------------------- 1. blueprint errors


def test_build_of_malformed_yaml_prints_checks_diagnostics_and_exits_2(tmp_path):
    directory = project(tmp_path, architecture=BAD_YAML)
    check = cli("check", str(directory))
    assert check.returncode == 2 and "architecture.yaml:5:1: error AC001" in check.stderr, check.stderr
    for args in ((), ("gen",), ("--strict",), ("gen", "--strict"), ("--continue", "-n", "2")):
        build = cli("build", str(directory), *args)
        assert build.returncode == 2, (args, build.stdout, build.stderr)
        assert build.stderr == check.stderr, args
        assert_no_doit_internals(build)


def test_build_of_a_blueprint_with_errors_that_parses_exits_2_with_checks_lines(tmp_path):
    arch = (EXAMPLE / "architecture.yaml").read_text()
    directory = project(tmp_path, architecture=arch.replace("schema_version:", "schema_versio:", 1))
    check = cli("check", str(directory))
    assert check.returncode == 2 and ": error AC012: missing key 'schema_version'" in check.stderr, (
        check.stderr
    )
    build = cli("build", str(directory), "ir")
    assert build.returncode == 2, build.stdout + build.stderr
    assert build.stderr == check.stderr
    assert_no_doit_internals(build)


def test_build_of_a_missing_folder_or_one_without_blueprints_says_what_to_do(tmp_path):
    empty = tmp_path / "empty dir"
    empty.mkdir()
    for folder, what in ((tmp_path / "nowhere", "no such directory"), (empty, "has no architecture.yaml")):
        build = cli("build", str(folder))
        assert build.returncode == 2
        lines = build.stderr.splitlines()
        assert len(lines) == 1 and build.stdout == "", build.stdout + build.stderr
        assert str(folder) in lines[0] and what in lines[0]
        assert f"autocoder init {shlex.quote(str(folder))}" in lines[0]


# ----------------------------------------------------------------- 2. flags in any order


@pytest.mark.parametrize(
    "args",
    [
        ("DIR", "--strict", "ir"),
        ("--strict", "DIR", "ir"),
        ("DIR", "ir", "--strict"),
        ("DIR", "-n", "2", "ir", "--strict"),
    ],
)
def test_strict_works_before_or_after_the_folder_and_the_tasks(tmp_path, args):
    directory = with_a_warning(tmp_path)
    run = cli("build", *(str(directory) if a == "DIR" else a for a in args))
    assert run.returncode == 2, run.stdout + run.stderr
    assert "AC112" in run.stderr
    assert_no_doit_internals(run)


def test_doit_options_and_tasks_pass_through_in_any_order(tmp_path):
    directory = with_a_warning(tmp_path)  # a warning: the build passes without --strict
    for args in (
        ("--continue", "-n", "2", "ir"),
        ("ir", "--continue", "-n", "2"),
        ("-n", "2", "DIR", "ir", "--continue"),
        ("ir", "--reporter=json"),
    ):
        argv = [str(directory) if a == "DIR" else a for a in args]
        if "DIR" not in args:
            argv.insert(0, str(directory))
        run = cli("build", *argv)
        assert run.returncode == 0, (args, run.stdout + run.stderr)
        assert {".  ir", "-- ir"} & set(run.stdout.splitlines()) or '"name": "ir"' in run.stdout, run.stdout
        assert_no_doit_internals(run)


def test_unknown_options_and_tasks_get_one_line_not_doits_parser(tmp_path):
    directory = with_a_warning(tmp_path)
    bogus = cli("build", str(directory), "--bogus")
    assert bogus.returncode == 2 and "CmdOption" not in bogus.stderr
    assert bogus.stderr.splitlines() == [
        "autocoder build: unknown option --bogus for doit's `run`; see `autocoder build --help`"
    ]
    typo = cli("build", str(directory), "gne")
    assert typo.returncode == 3 and "Traceback" not in typo.stderr
    assert 'Invalid parameter: "gne"' in typo.stderr
    assert "autocoder help" not in typo.stderr
    assert f'"autocoder build {directory} list"' in typo.stderr  # a command that exists


# ----------------------------------------------------------------- 3. help and schema


def test_build_help_lists_its_flags_and_what_goes_to_doit():
    run = cli("build", "--help")
    assert run.returncode == 0
    for text in ("--continue", "--strict", "doit", "-n N", "task names", "autocoder build myproject gen"):
        assert text in run.stdout, text


def test_graph_format_and_rules_have_help_text():
    graph = cli("graph", "--help").stdout
    assert "--format {mermaid,dot}" in graph and "Graphviz" in graph
    assert "diagnostic code" in cli("rules", "--help").stdout


def test_schema_says_what_it_wrote_and_checked(tmp_path):
    out = tmp_path / "schemas"
    first = cli("schema", "--out", str(out))
    assert first.returncode == 0
    assert first.stdout.splitlines() == [
        *(f"wrote {out / name}" for name in SCHEMAS),
        f"{len(SCHEMAS)} of {len(SCHEMAS)} schema file(s) rewritten in {out}",
    ]
    second = cli("schema", "--out", str(out))
    assert second.stdout.splitlines()[-1] == f"0 of {len(SCHEMAS)} schema file(s) rewritten in {out}"
    assert all(line.startswith("unchanged ") for line in second.stdout.splitlines()[:-1])
    check = cli("schema", "--check", "--out", str(out))
    assert check.returncode == 0 and len(check.stdout.splitlines()) == len(SCHEMAS) + 1
    assert "match the models" in check.stdout


# ----------------------------------------------------------------- 4. a closed pipe


@pytest.mark.parametrize("args", [("rules",), ("build", "DIR", "list"), ("build", "DIR", "info", "ir")])
def test_output_into_a_closed_pipe_ends_quietly(tmp_path, args):
    directory = project(tmp_path)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line (`| head -0`)
    try:
        run = cli(*(str(directory) if a == "DIR" else a for a in args), stdout=write_end)
    finally:
        os.close(write_end)
    assert run.stderr == "", run.stderr
    assert run.returncode in (141, -13), run.returncode  # 128+SIGPIPE, or killed by it


# ----------------------------------------------------------------- 5. init


@pytest.mark.parametrize("name", ["my project", "it's"])
def test_init_prints_a_next_step_to_paste_into_a_shell(tmp_path, name):
    run = cli("init", name, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    step = run.stdout.splitlines()[-1].strip()
    assert shlex.split(step) == ["cd", name, "&&", "doit"]
    pasted = subprocess.run(
        ["sh", "-c", step.replace("&& doit", "&& pwd")], cwd=tmp_path, capture_output=True
    )
    assert pasted.returncode == 0 and pasted.stdout.decode().strip() == str(tmp_path / name)


def test_a_task_name_in_place_of_the_folder_gets_the_command_to_run(tmp_path):
    directory = project(tmp_path)
    run = cli("build", "ir", "--strict", cwd=directory)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.splitlines() == [
        "autocoder: ir: no such directory; the first argument of `autocoder build` is the project "
        "folder; fix: to build the project here, run `autocoder build . ir --strict`"
    ]


@pytest.mark.parametrize(
    ("doit_args", "processes"),
    [
        ([], 1),
        (["-n", "2"], 2),
        (["-n2", "check"], 2),
        (["--process=3"], 3),
        (["--process", "4", "gen"], 4),
        (["-n", "two"], 1),  # doit itself says what is wrong
        (["check", "-n"], 1),
        (["-n2"], 2),
        (["--process=2"], 2),
        (["-n", "2", "check"], 2),
        # read with the arities of doit's own options, as doit's getopt reads them
        (["-sn2"], 2),  # -s takes no value: -n2 follows in the same argument
        (["-vn2"], 1),  # -v takes one: "n2" is its value
        (["-v", "2", "--reporter", "json", "-n", "3"], 3),
        (["--reporter", "-n", "check"], 1),  # "-n" is the reporter's name
        (["-n", "2", "check", "-n", "3"], 2),  # after a task name: not doit's options
        (["run", "--process", "2"], 2),
    ],
)
def test_the_number_of_doit_processes_a_build_asks_for(doit_args: list[str], processes: int) -> None:
    from autocoder.cli import _processes

    assert _processes(doit_args) == processes


def test_a_one_process_build_does_not_import_the_ir_models_before_doit_runs() -> None:
    """An edit build imports them during `check`, beside its compile in the warm worker
    (tasks/prefetch.py): ~0.25 s of the build's start otherwise."""
    code = (
        "import argparse, sys\n"
        "from autocoder import cli\n"
        "args = cli._parser().parse_args(['build', '.'])\n"
        "cli._llm_environment(args)\n"
        "assert 'autocoder.ir.models' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
