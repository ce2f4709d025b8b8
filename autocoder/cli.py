"""The `autocoder` command line.

Exit codes: 0 success; 2 the blueprints (or the command line) have errors; 1 a build step
failed (doit's code). A user mistake never ends in a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import getopt
import json
import os
import shlex
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from autocoder import __version__
from autocoder.layout import ARCHITECTURE, DEPLOYMENT
from autocoder.userpaths import SHOWN_ENV, as_given

# Commands import what they need when they run: `autocoder build` on an up-to-date project
# must not pay for loading the compiler.

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BLUEPRINT = 2
EXIT_ERROR = 3  # doit's code for an error outside the tasks (here: a project it cannot write)

DODO_TEXT = '''"""Autocoder build of this directory: run `doit` (also `doit list`, `doit info TASK`)."""

from autocoder.tasks.dodo import *  # noqa: F401,F403 - the tasks and DOIT_CONFIG
'''


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser()
    try:
        if argv[:1] == ["build"]:
            split = _split_build_argv(argv[1:])
            if isinstance(split, str):
                print(f"autocoder build: {split}; see `autocoder build --help`", file=sys.stderr)
                return EXIT_BLUEPRINT
            ours, doit_command, doit_args = split
            args = parser.parse_args(["build", *ours])
            args.doit_command, args.doit_args = doit_command, doit_args
        else:
            args = parser.parse_args(argv)
        if not hasattr(args, "run"):
            parser.print_help()
            return EXIT_BLUEPRINT
        code = int(args.run(args))
        sys.stdout.flush()  # inside the try: a closed pipe is reported here, not at exit
        if args.run is cmd_build:
            from autocoder.tasks.reporter import exit_now, exit_now_allowed

            if exit_now_allowed("autocoder"):  # the build is over: skip the interpreter's teardown
                exit_now(code)
        return code
    except BrokenPipeError:
        # the reader went away (`autocoder rules | head -3`): stop quietly, as a Unix tool does;
        # stdout now points at /dev/null so the interpreter's final flush cannot fail again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + 13  # as if killed by SIGPIPE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"autocoder: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autocoder",
        description="Turn a system blueprint (architecture.yaml + deployment.yaml) into a "
        "deployed, verifiable system, as an incremental doit build.",
        epilog="Typical use: `autocoder init DIR`, edit the blueprints, `autocoder check DIR`, "
        "then `autocoder build DIR` (or `doit` inside DIR).",
    )
    parser.add_argument("--version", action="version", version=f"autocoder {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    check = sub.add_parser(
        "check",
        help="parse and analyse the blueprints; exit 0 when clean, 2 on errors",
        description="Parse and analyse DIR/architecture.yaml and DIR/deployment.yaml. "
        "Every problem is reported as FILE:LINE:COL with a code (see `autocoder rules`).",
    )
    _dir_arg(check)
    check.add_argument("--strict", action="store_true", help="treat warnings as errors")
    check.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    check.set_defaults(run=cmd_check)

    ir = sub.add_parser(
        "ir",
        help="compile the blueprints into DIR/generated/ir.v1.json and slices",
        description="Compile the blueprints and write generated/ir.v1.json plus "
        "generated/ir/<component>.json (only files whose bytes change are rewritten).",
    )
    _dir_arg(ir)
    ir.add_argument("--strict", action="store_true", help="treat warnings as errors")
    ir.set_defaults(run=cmd_ir)

    init = sub.add_parser(
        "init",
        help="make DIR an Autocoder project (dodo.py; starter blueprints if absent)",
        description="Write DIR/dodo.py so that `doit` in DIR runs Autocoder's tasks. "
        "Starter blueprints are written only where none exist: a blueprint is never "
        "overwritten.",
    )
    _dir_arg(init)
    init.add_argument("--name", default=None, help="system name for starter blueprints (default: from DIR)")
    init.set_defaults(run=cmd_init)

    build = sub.add_parser(
        "build",
        help="run the doit build in DIR (doit arguments may follow, in any order)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="autocoder build [DIR] [--strict] [--continue] [--frozen] [--llm-* ...] "
        "[--cache-readonly] [--explain] [DOIT_ARG ...]",
        description="Run Autocoder's doit tasks in DIR without needing a dodo.py: compile, "
        "generate, then lint,\ntype-check, test, benchmark and policy-check every component.\n\n"
        "The first argument that is not an option is DIR; every other argument goes to doit:\n"
        "task names (check, ir, gen, gen:<component>, test:<component>...), a doit command\n"
        "(list, info TASK, clean, forget, help) and doit options (-n N processes, --reporter json,\n"
        "-v 2...). Options may come before or after DIR and the task names.\n\n"
        "Exit codes: 0 built; 2 the blueprints have errors (shown as FILE:LINE:COL, as by\n"
        "`autocoder check`) or a bad command line; 1 a build step failed.",
        epilog="examples:\n"
        "  autocoder build myproject                  the whole build\n"
        "  autocoder build myproject gen              only up to code generation\n"
        "  autocoder build myproject --continue -n 2  check every component before failing, "
        "2 processes\n"
        "  autocoder build myproject --strict ir      warnings fail the build too\n"
        "  autocoder build myproject list             the tasks (also: info ir, clean, help run)",
    )
    _dir_arg(build)
    build.add_argument("--strict", action="store_true", help="treat blueprint warnings as errors")
    build.add_argument(
        "--cache-readonly",
        action="store_true",
        help="read the run-cache's remote, never write it (AUTOCODER_CACHE_READONLY=1)",
    )
    build.add_argument("--explain", action="store_true", help="print why each task runs, as it starts")
    build.add_argument(
        "-c",
        "--continue",
        dest="doit_continue",
        action="store_true",
        help="(doit's) keep building the other components after a failure, then fail",
    )
    build.add_argument(
        "doit_args",
        nargs="*",
        metavar="DOIT_ARG",
        help="for doit: task names, a doit command, doit options such as -n N or --reporter NAME",
    )
    _llm_args(build)
    build.set_defaults(run=cmd_build)

    _add_new_command(sub)

    lock = sub.add_parser(
        "lock",
        help="freeze the LLM completions of the last green build into DIR/autocoder.lock",
        description="Write DIR/autocoder.lock from the last build of DIR, which must have been green: "
        "per LLM-written component its prompt hash, model and completion. Commit the file: builds "
        "then take those completions without a model (and `autocoder build DIR --frozen` never asks one).",
    )
    _dir_arg(lock)
    lock.set_defaults(run=cmd_lock)

    schema = sub.add_parser(
        "schema",
        help="write the JSON Schemas of the blueprints and the IR",
        description="Generate architecture, deployment and IR JSON Schemas from "
        "the models. --check exits 1 when the files differ from the models.",
    )
    schema.add_argument("--out", type=Path, default=None, help="directory (default: the packaged schemas/)")
    schema.add_argument("--check", action="store_true", help="only compare; exit 1 on drift")
    schema.set_defaults(run=cmd_schema)

    graph = sub.add_parser(
        "graph",
        help="print the component diagram (Mermaid or DOT)",
        description="Compile DIR and print its components and bindings as a Mermaid "
        "flowchart (paste into a README) or a Graphviz DOT graph.",
    )
    _dir_arg(graph)
    graph.add_argument(
        "--format",
        choices=("mermaid", "dot"),
        default="mermaid",
        help="mermaid: a flowchart for Markdown (default); dot: Graphviz, e.g. `| dot -Tsvg > system.svg`",
    )
    graph.set_defaults(run=cmd_graph)

    rules = sub.add_parser(
        "rules",
        help="list every diagnostic and policy rule with its meaning",
        description="List every compiler diagnostic code (ACnnn, as shown by `autocoder check`) and "
        "every validation policy rule, with its severity and title.",
    )
    rules.set_defaults(run=cmd_rules)
    _add_release_commands(sub)
    from autocoder.runcache.commands import add_commands

    add_commands(sub, _dir_arg)  # `cache status|push|pull|gc` and `explain`
    return parser


def _add_new_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`autocoder new "DESCRIPTION"`: blueprints from natural language (see docs/nl.md)."""
    new = sub.add_parser(
        "new",
        help="draft blueprints from a description with the configured LLM (asks when unclear)",
        description="Ask the configured LLM to turn DESCRIPTION into architecture.yaml and "
        "deployment.yaml in DIR (plus requirements.json: each requirement and what addresses it), "
        "checked by the same analysis as `autocoder check`; errors go back to the model for at most "
        "--llm-repair-attempts repairs (default 2). Choices the description leaves open (the model's "
        "questions, and analysis findings whose fix is the user's choice, e.g. auth on an ingress or "
        "SQLite with replicas) are asked on a terminal, or written to DIR/questions.yaml. Requirements "
        "that contradict each other, or a throughput the stated limits cannot carry, fail at once with "
        "the reason. Exit codes: 0 written; 2 impossible, still invalid, or bad input; 3 questions "
        "written to DIR/questions.yaml (fill in each `answer:`, then rerun with --answers FILE); 1 the "
        "model cannot be reached, or --frozen and DIR/autocoder.lock has no draft for this description "
        "and these answers. The accepted draft is recorded in DIR/autocoder.lock; a rerun whose "
        "description, context and answers match takes it from there without a model.",
        epilog="The model: --llm-base-url and --llm-model, or AUTOCODER_LLM_BASE_URL, AUTOCODER_LLM_MODEL "
        'and AUTOCODER_LLM_API_KEY (the settings of code generation). Example: autocoder new "An HTTP '
        'API that accepts events from authenticated clients and stores each by id" -o events '
        "--llm-base-url http://127.0.0.1:8765/v1 --llm-model smollm2. More: docs/nl.md.",
    )
    new.add_argument("description", metavar="DESCRIPTION", help="the system, in a paragraph")
    new.add_argument(
        "--context", type=Path, action="append", default=[], metavar="FILE", help="text file to consider"
    )
    new.add_argument(
        "-o", "--output", type=Path, default=Path("."), metavar="DIR", help="output folder (default: .)"
    )
    new.add_argument(
        "--answers",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="answered questions.yaml (repeatable: the answers of every file count)",
    )
    new.add_argument("--force", action="store_true", help="overwrite existing blueprints in DIR")
    _llm_args(
        new,
        "LLM (the model that drafts; flags > AUTOCODER_LLM_* variables > the llm: block of DIR's "
        "deployment.yaml)",
        "never call a model: the draft must be in DIR/autocoder.lock",
    )
    new.set_defaults(run=cmd_new)


def cmd_new(args: argparse.Namespace) -> int:
    from autocoder.llm.settings import SettingsError, resolve
    from autocoder.nl.command import run_new

    out: Path = args.output
    if out.exists() and not out.is_dir():
        print(f"autocoder new: {out}: not a directory; fix: pass a folder with -o", file=sys.stderr)
        return EXIT_BLUEPRINT
    flags = {k: v for k, v in _llm_environment(args).items() if k.startswith("AUTOCODER_LLM_")}
    try:
        settings = resolve(out, env={**os.environ, **flags})
    except SettingsError as exc:
        print(f"autocoder new: {exc}", file=sys.stderr)
        return EXIT_BLUEPRINT
    return run_new(
        args.description,
        args.context,
        out,
        settings,
        force=args.force,
        answers_files=args.answers,
        interactive=sys.stdin.isatty(),
    )


def _add_release_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`verify` and `keygen`: the release side of stage 4 (see docs/deployment.md)."""
    verify = sub.add_parser(
        "verify",
        help="check a signed package: signature, manifest and provenance",
        description="Verify dist/<system>-<version>.tar.gz made by `autocoder build DIR sign`: its .sig "
        "against the public key (default: the .pub beside it), every file against the manifest inside, "
        "and the signed provenance (.intoto.jsonl) against the files it names. Exit 1 naming what changed.",
    )
    verify.add_argument("tarball", type=Path, metavar="TARBALL")
    verify.add_argument(
        "--key", type=Path, default=None, help="public key PEM (default: <name>.pub beside it)"
    )
    verify.set_defaults(run=cmd_verify)
    keygen = sub.add_parser(
        "keygen",
        help="write a signing key pair in cosign's format (password from COSIGN_PASSWORD)",
        description="Write PREFIX.key (ECDSA P-256, cosign's `ENCRYPTED SIGSTORE PRIVATE KEY`, encrypted "
        "with COSIGN_PASSWORD) and PREFIX.pub. Sign with AUTOCODER_SIGNING_KEY=PREFIX.key.",
    )
    keygen.add_argument("--output-prefix", type=Path, default=Path("cosign"), metavar="PREFIX")
    keygen.set_defaults(run=cmd_keygen)
    tools = sub.add_parser(
        "tools",
        help="install the validators that live outside Autocoder's environment (checkov)",
        description="`autocoder tools install` creates checkov's own environment with uv under "
        "$XDG_CACHE_HOME/autocoder-tools (or AUTOCODER_TOOLS_DIR), once, with network; deploy:validate "
        "finds it there and runs it offline. `autocoder tools` alone says what is installed.",
    )
    tools.add_argument("action", nargs="?", choices=["install"], help="install what is missing")
    tools.set_defaults(run=cmd_tools)


def _absolute_key_path() -> None:
    key = os.environ.get("AUTOCODER_SIGNING_KEY")  # autocoder.deploy.keys.KEY_ENV (not imported: slow)
    if key and not os.path.isabs(key):
        os.environ["AUTOCODER_SIGNING_KEY"] = os.path.abspath(key)


def cmd_verify(args: argparse.Namespace) -> int:
    from autocoder.deploy.verify import verify_release

    problems = verify_release(args.tarball, args.key)
    for problem in problems:
        print(f"autocoder verify: {problem}", file=sys.stderr)
    if problems:
        print(f"autocoder verify: {args.tarball}: FAILED ({len(problems)} problem(s))", file=sys.stderr)
        return 1
    print(f"{args.tarball}: signature, manifest and provenance verified")
    return 0


def cmd_tools(args: argparse.Namespace) -> int:
    from autocoder.deploy import tools

    if args.action != "install":
        installed = tools.managed_checkov() is not None
        print(f"checkov {tools.CHECKOV_VERSION}: {tools.checkov_env() if installed else 'not installed'}")
        return 0 if installed else 1
    try:
        tools.install_checkov()
    except (tools.ToolInstallError, OSError) as exc:
        print(f"autocoder tools install: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_keygen(args: argparse.Namespace) -> int:
    from autocoder.deploy.keys import PASSWORD_ENV, SigningKeyError, keygen

    password = os.environ.get(PASSWORD_ENV)
    if password is None:
        print(
            f"autocoder keygen: set {PASSWORD_ENV} to the password that will encrypt the key", file=sys.stderr
        )
        return 2
    try:
        private, public = keygen(args.output_prefix, password)
    except (SigningKeyError, OSError) as exc:
        print(f"autocoder keygen: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {private} (encrypted) and {public}; sign with AUTOCODER_SIGNING_KEY={private}")
    return 0


def _dir_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "dir",
        type=Path,
        nargs="?",
        metavar="DIR",
        default=Path("."),
        help="blueprint directory holding architecture.yaml and deployment.yaml (default: .)",
    )


def _require_dir(directory: Path) -> bool:
    if not directory.is_dir():
        what = "not a directory" if directory.exists() else "no such directory"
        print(
            f"autocoder: {directory}: {what}; fix: pass the folder that holds {ARCHITECTURE} and "
            f"{DEPLOYMENT}, or start a project there with `autocoder init {shlex.quote(str(directory))}`",
            file=sys.stderr,
        )
        return False
    return True


def cmd_check(args: argparse.Namespace) -> int:
    from autocoder.compile import compile_directory
    from autocoder.diagnostics import format_report

    if not _require_dir(args.dir):
        return EXIT_BLUEPRINT
    result = compile_directory(args.dir, strict=args.strict)
    ok = result.ok(args.strict)
    if args.format == "json":
        print(json.dumps({"ok": ok, "diagnostics": [d.to_json() for d in result.diagnostics]}, indent=2))
    else:
        report = format_report(result.diagnostics, as_given(args.dir))
        print(report, file=sys.stdout if ok else sys.stderr)
    return EXIT_OK if ok else EXIT_BLUEPRINT


def cmd_ir(args: argparse.Namespace) -> int:
    from autocoder.compile import compile_directory
    from autocoder.diagnostics import format_report
    from autocoder.ir.write import write_ir

    if not _require_dir(args.dir):
        return EXIT_BLUEPRINT
    result = compile_directory(args.dir, strict=args.strict)
    if result.diagnostics:
        print(format_report(result.diagnostics, as_given(args.dir)), file=sys.stderr)
    if not result.ok(args.strict) or result.ir is None:
        return EXIT_BLUEPRINT
    written = write_ir(args.dir / "generated", result.ir, result.slices)
    print(f"wrote {len(written)} of {len(result.slices) + 1} IR file(s) under {args.dir / 'generated'}")
    return EXIT_OK


def cmd_init(args: argparse.Namespace) -> int:
    from autocoder.fsutil import write_if_changed
    from autocoder.starter import starter_blueprints

    directory: Path = args.dir
    directory.mkdir(parents=True, exist_ok=True)
    dodo = directory / "dodo.py"
    if dodo.exists() and dodo.read_text() != DODO_TEXT:
        print(
            f"autocoder: {dodo} exists and is not Autocoder's; fix: move it away, or add "
            f"`from autocoder.tasks.dodo import *` to it yourself",
            file=sys.stderr,
        )
        return EXIT_BLUEPRINT
    print(f"{'wrote' if write_if_changed(dodo, DODO_TEXT.encode()) else 'kept'} {dodo}")
    name = args.name or _system_name(directory)
    for filename, text in starter_blueprints(name, directory).items():
        path = directory / filename
        if path.exists():
            print(f"kept {path} (blueprints are never overwritten)")
        else:
            write_if_changed(path, text.encode())
            print(f"wrote {path}")
    # a line to paste into a shell, quoted for it ("my project", "it's")
    print(f"next (after editing the blueprints, if you like):\n  cd {shlex.quote(str(directory))} && doit")
    return EXIT_OK


def _system_name(directory: Path) -> str:
    raw = directory.resolve().name.lower().replace("-", "_")
    cleaned = "".join(ch for ch in raw if ch.isalnum() or ch == "_").lstrip("0123456789_")
    return (cleaned or "system")[:24]


def cmd_build(args: argparse.Namespace) -> int:
    from doit.cmd_base import ModuleTaskLoader
    from doit.doit_cmd import DoitMain

    from autocoder.tasks import dodo
    from autocoder.tasks.compile_tasks import STRICT_ENV, blueprint_outline, output_problem

    directory: Path = args.dir
    if not directory.exists() and Path(ARCHITECTURE).is_file():
        # `autocoder build ir` inside a project: the first argument is always the folder
        again = [".", str(directory), *([args.doit_command] if args.doit_command else [])]
        again += [*(["--strict"] if args.strict else []), *args.doit_args]
        quoted = shlex.join(["autocoder", "build", *again])
        print(
            f"autocoder: {directory}: no such directory; the first argument of `autocoder build` is "
            f"the project folder; fix: to build the project here, run `{quoted}`",
            file=sys.stderr,
        )
        return EXIT_BLUEPRINT
    if not _require_dir(directory):
        return EXIT_BLUEPRINT
    runs_tasks = args.doit_command in (None, "run")
    if runs_tasks and not (directory / ARCHITECTURE).is_file():
        print(
            f"autocoder: {directory} has no {ARCHITECTURE}; fix: pass the folder that holds the "
            f"blueprints, or write starter ones with `autocoder init {shlex.quote(str(directory))}`",
            file=sys.stderr,
        )
        return EXIT_BLUEPRINT
    if runs_tasks and blueprint_outline(directory) is None and output_problem(directory) is None:
        # The blueprint does not parse (or is too large): no per-component task exists. Say
        # what is wrong exactly as `autocoder check` does, without doit's task framing.
        from autocoder.compile import compile_directory
        from autocoder.diagnostics import format_report

        result = compile_directory(directory, strict=args.strict)
        if not result.ok(args.strict):
            print(format_report(result.diagnostics, as_given(directory)), file=sys.stderr)
            return EXIT_BLUEPRINT
    if args.strict:
        os.environ[STRICT_ENV] = "1"
    os.environ[SHOWN_ENV] = as_given(directory)  # the tasks run inside it: see userpaths
    if args.cache_readonly:
        os.environ["AUTOCODER_CACHE_READONLY"] = "1"
    from autocoder.tasks.reporter import AutocoderReporter

    _absolute_key_path()  # the tasks run in the project folder: a relative key path is the caller's
    if args.explain and runs_tasks:
        from autocoder.runcache.explain import explain

        reasons = explain(directory, [a for a in args.doit_args if not a.startswith("-")])
        AutocoderReporter.reasons = reasons.tasks
        if reasons.blueprint:
            print("\n".join(["blueprint changes since the last build:", *reasons.blueprint]))

    os.chdir(directory)
    doit_args = [args.doit_command] if args.doit_command else []
    doit_args += args.doit_args
    defaults = dodo.DOIT_CONFIG["default_tasks"]
    if not _names_a_task(doit_args, defaults if isinstance(defaults, list) else []):
        if blueprint_outline(Path(".")) is None:
            # No outline (the output directory is unsafe): the per-component tasks do not
            # exist, so the default task list cannot run; `check` can, and says what is wrong.
            doit_args.append("check")

    if not runs_tasks and args.doit_command not in ("strace", "auto") and hasattr(signal, "SIGPIPE"):
        # list, info, help...: doit prints a closed pipe's error as a traceback; these run no
        # task (no socket a test could write to), so die quietly on SIGPIPE as `ls` does
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)

    class Main(DoitMain):
        # doit's own messages ("Type ... help") name the command that reaches it
        BIN_NAME = f"autocoder build {shlex.quote(str(directory))}"

    if runs_tasks and output_problem(Path(".")) is None:
        from autocoder.tasks.lock import cannot_write, preflight

        try:  # one build at a time; a read-only project says so in one line (not sqlite's traceback)
            preflight(Path("."))
        except OSError as exc:
            print(f"autocoder: {cannot_write(exc)}", file=sys.stderr)
            return EXIT_ERROR
        from autocoder.tasks.reporter import use_project_storage

        use_project_storage(Path.cwd())  # also under another reporter (--reporter json)
    from autocoder.llm.usage import report_usage
    from autocoder.validate.inprocess import environment

    llm_env = _llm_environment(args)
    if runs_tasks and _processes(doit_args) > 1:
        # doit forks its workers from this process: the IR models (pydantic builds them as
        # they are imported, ~0.25 s), which `check`, `ir` and every gen task use, are then
        # imported once instead of once per worker. A one-process build (an edit) imports
        # them during `check`, while its compile runs in the warm worker (tasks/prefetch.py).
        import autocoder.ir.models  # noqa: F401
    with environment(**llm_env), _storage_errors_in_one_line():
        code = int(Main(ModuleTaskLoader(vars(dodo))).run(doit_args) or 0)
    if runs_tasks:
        report_usage(Path("."), llm_env["AUTOCODER_BUILD_ID"], code == 0)
    if AutocoderReporter.blueprint_failed:
        return EXIT_BLUEPRINT  # `check` failed: the blueprints have errors, as `autocoder check` says
    if code == 2 and AutocoderReporter.failures_only:
        return EXIT_FAILED  # tasks skipped after a failed tier: still "a tier failed"
    return code


class _OneLineStorageErrors:
    """sys.stderr during a build: doit prints any error outside a task as a traceback; one
    that says the disk is full or read-only (doit's database saved at the end of the run, a
    report written by a task) becomes one line naming the path. Everything else passes as is."""

    MARKERS = ("sqlite3.OperationalError: ", "OSError: ", "PermissionError: ")

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        if text.startswith("Traceback (most recent call last):"):
            last = text.rstrip().splitlines()[-1]
            for marker in self.MARKERS:
                if last.startswith(marker):
                    reason = last.removeprefix(marker)
                    where = ".doit.db" if marker.startswith("sqlite3") else ""
                    from autocoder.tasks.lock import cannot_write

                    text = f"autocoder: {cannot_write(OSError(reason), where)}\n"
        return int(self.stream.write(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


@contextlib.contextmanager
def _storage_errors_in_one_line() -> Iterator[None]:
    original = sys.stderr
    sys.stderr = _OneLineStorageErrors(original)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stderr = original


_DOIT_COMMANDS = frozenset(
    ("auto", "clean", "dumpdb", "forget", "help", "ignore", "info", "list", "reset-dep", "strace")
)


def _llm_args(
    build: argparse.ArgumentParser,
    title: str = "LLM (for custom components; flags > AUTOCODER_LLM_* variables > the llm: block of "
    "deployment.yaml)",
    frozen: str = "never call a model: every LLM component must be in autocoder.lock",
) -> None:
    """The LLM flags of `autocoder build` (and `new`): they win over AUTOCODER_LLM_* and deployment.yaml."""
    group = build.add_argument_group(title)
    group.add_argument("--llm-provider", choices=("offline", "openai"), help="offline: lock file only")
    group.add_argument(
        "--llm-base-url", metavar="URL", help="OpenAI-compatible server, e.g. http://127.0.0.1:8765/v1"
    )
    group.add_argument("--llm-model", metavar="NAME", help="model name (selects the openai provider)")
    group.add_argument(
        "--llm-cache-dir", metavar="DIR", help="completion cache (default generated/.cache/llm)"
    )
    group.add_argument("--llm-repair-attempts", metavar="N", help="repair requests after a failed check")
    group.add_argument("--frozen", action="store_true", help=frozen)


def _llm_environment(args: argparse.Namespace) -> dict[str, str]:
    """The build's LLM flags as the AUTOCODER_LLM_* variables the gen tasks read (doit may run
    them in worker processes), plus this build's id for its usage figures."""
    import uuid

    from autocoder.llm.usage import BUILD_ENV

    flags = {
        "PROVIDER": args.llm_provider,
        "BASE_URL": args.llm_base_url,
        "MODEL": args.llm_model,
        "CACHE_DIR": args.llm_cache_dir,
        "REPAIR_ATTEMPTS": args.llm_repair_attempts,
        "FROZEN": "1" if args.frozen else None,
    }
    values = {f"AUTOCODER_LLM_{k}": v for k, v in flags.items() if v is not None}
    if args.llm_cache_dir is not None:  # relative to where the command was typed, not to DIR
        values["AUTOCODER_LLM_CACHE_DIR"] = str(Path(args.llm_cache_dir).resolve())
    return {**values, BUILD_ENV: uuid.uuid4().hex}


def cmd_lock(args: argparse.Namespace) -> int:
    from autocoder.codegen.render import GenerationError
    from autocoder.llm.lock import freeze

    if not _require_dir(args.dir):
        return EXIT_BLUEPRINT
    try:
        path, names = freeze(args.dir)
    except GenerationError as exc:
        print(f"autocoder lock: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"locked {len(names)} component(s) in {path}: {', '.join(names) or '(none)'}")
    return 0


def _processes(doit_args: list[str]) -> int:
    """The number of processes `-n N` / `-nN` / `--process=N` asks doit for, read as doit reads
    its options (getopt, which stops at the first task name), with the arities of doit's own
    table (`_doit_options`, which `_split_build_argv` reads them by too). 1 when not given, not a
    number, or the options do not parse: doit itself then says what is wrong."""
    options = _doit_options()["run"]
    short = "".join(name[1] + ":" * takes for name, takes in options.items() if not name.startswith("--"))
    long = [name[2:] + "=" * takes for name, takes in options.items() if name.startswith("--")]
    try:
        given, _ = getopt.getopt(doit_args[1:] if doit_args[:1] == ["run"] else doit_args, short, long)
        values = [value for option, value in given if option in ("-n", "--process")]
        return int(values[-1]) if values else 1
    except (getopt.GetoptError, ValueError):
        return 1


def _names_a_task(doit_args: list[str], tasks: list[str]) -> bool:
    """Whether the doit arguments name a command or a task (else doit runs the default tasks)."""
    known = _DOIT_COMMANDS | {"run", *tasks}
    return any(arg.split(":", 1)[0] in known for arg in doit_args if not arg.startswith("-"))


_OURS = frozenset(("--strict", "--cache-readonly", "--explain", "-h", "--help", "--frozen"))
_OURS_WITH_VALUE = frozenset(
    ("--llm-provider", "--llm-base-url", "--llm-model", "--llm-cache-dir", "--llm-repair-attempts")
)


def _split_build_argv(argv: list[str]) -> tuple[list[str], str | None, list[str]] | str:
    """`autocoder build`'s arguments, in any order, as (autocoder's: DIR, --strict, --help;
    the doit command if one is named; the other doit arguments, options first, in the order
    doit parses them), or what is wrong with them.

    The first argument that is neither an option nor an option's value is DIR; a doit command
    (list, info, clean...) may follow it. Options are known from doit's own tables, so the value
    of `-n 2` or `--reporter json` is not taken for DIR or a task. After `--` everything goes
    to doit as it is.
    """
    commands = _doit_options()
    ours: list[str] = []
    options: list[str] = []
    positionals: list[str] = []
    rest: list[str] = []
    directory_seen = False
    command: str | None = None
    index = 0
    while index < len(argv):
        arg = argv[index]
        index += 1
        if arg == "--":
            rest = argv[index:]
            break
        if arg in _OURS:
            ours.append(arg)
            continue
        if arg.split("=", 1)[0] in _OURS_WITH_VALUE:  # --llm-model NAME or --llm-model=NAME
            ours.append(arg)
            if "=" not in arg:
                if index == len(argv):
                    return f"option {arg} needs a value"
                ours.append(argv[index])
                index += 1
            continue
        if arg.startswith("-") and arg != "-":
            takes = _option_takes_value(arg, commands[command or "run"])
            if takes is None:
                return f"unknown option {arg.split('=', 1)[0]} for doit's `{command or 'run'}`"
            options.append(arg)
            if takes:
                if index == len(argv):
                    return f"option {arg} needs a value"
                options.append(argv[index])
                index += 1
            continue
        if not directory_seen:
            directory_seen = True
            ours.append(arg)
        elif command is None and not positionals and arg in commands and arg != "run":
            command = arg
        else:
            positionals.append(arg)
    if command is not None:  # options read before the command was known: read them again
        for option in options:
            if option.startswith("-") and _option_takes_value(option, commands[command]) is None:
                return f"unknown option {option.split('=', 1)[0]} for doit's `{command}`"
    return ours, command, [*options, *positionals, *rest]


def _doit_options() -> dict[str, dict[str, bool]]:
    """Every doit command's options: {"-n": takes a value, "--process": takes a value...}
    (read once a process: a build reads them for its argv and for its `-n`)."""
    _entry_points_once()
    return _doit_option_tables()


@functools.cache
def _doit_option_tables() -> dict[str, dict[str, bool]]:
    from doit.cmd_base import ModuleTaskLoader
    from doit.doit_cmd import DoitMain

    doit = DoitMain(ModuleTaskLoader({}))
    commands = doit.get_cmds()
    found: dict[str, dict[str, bool]] = {}
    for name in commands:
        command = commands.get_plugin(name)(
            task_loader=doit.task_loader, config=doit.config, bin_name="doit", cmds=commands
        )
        options: dict[str, bool] = {}
        for option in command.get_options():
            takes = option.type is not bool
            if option.short:
                options["-" + option.short] = takes
            if option.long:
                options["--" + option.long] = takes
        found[name] = options
    return found


def _entry_points_once() -> None:
    """Have doit read the installed packages' entry points once in this process. doit looks up
    its plugins (commands, backends, reporters, loaders) one group at a time, each lookup reading
    the metadata of every installed distribution: 17 lookups, ~0.1-0.2 s of CPU before an
    `autocoder build` runs its first task. They are the same all along a build, so one read of
    them all answers every lookup (through doit's own hook, doit.plugin.entry_points_impl)."""
    import doit.plugin

    doit.plugin.entry_points_impl = _entry_points_impl


def _entry_points_impl() -> Callable[..., Any]:
    return _selected


def _selected(**params: str) -> Any:
    """importlib.metadata.entry_points(group=...), from one read of them all."""
    return _all_entry_points().select(**params)


@functools.cache
def _all_entry_points() -> Any:
    from importlib.metadata import entry_points

    return entry_points()


def _option_takes_value(arg: str, options: dict[str, bool]) -> bool | None:
    """Whether `arg` (as getopt reads it) needs the next argument as its value; None when it
    names an option the command does not have."""
    if arg.startswith("--"):
        name, has_value = arg.split("=", 1)[0], "=" in arg
        if name not in options:
            return None
        return options[name] and not has_value
    for position, letter in enumerate(arg[1:], start=1):  # -ac, -n2, -vn 2
        takes = options.get("-" + letter)
        if takes is None:
            return None
        if takes:
            return position == len(arg) - 1
    return False


def cmd_schema(args: argparse.Namespace) -> int:
    from autocoder.schemas_gen import SCHEMAS, check_schemas, default_dir, write_schemas

    out = args.out or default_dir()
    if args.check:
        drift = check_schemas(args.out)
        for name in SCHEMAS:
            if name in drift:
                print(
                    f"schema drift: {out / name} differs from the models; fix: run `autocoder schema`",
                    file=sys.stderr,
                )
            else:
                print(f"up to date {out / name}")
        if drift:
            print(f"{len(drift)} of {len(SCHEMAS)} schema file(s) differ from the models", file=sys.stderr)
            return EXIT_FAILED
        print(f"all {len(SCHEMAS)} schema file(s) in {out} match the models")
        return EXIT_OK
    written = write_schemas(args.out)
    for name in SCHEMAS:
        path = out / name
        print(f"{'wrote' if path in written else 'unchanged'} {path}")
    print(f"{len(written)} of {len(SCHEMAS)} schema file(s) rewritten in {out}")
    return EXIT_OK


def cmd_graph(args: argparse.Namespace) -> int:
    from autocoder.compile import compile_directory
    from autocoder.diagnostics import format_report
    from autocoder.graph import dot, mermaid

    if not _require_dir(args.dir):
        return EXIT_BLUEPRINT
    result = compile_directory(args.dir)
    if result.ir is None:
        print(format_report(result.diagnostics, as_given(args.dir)), file=sys.stderr)
        return EXIT_BLUEPRINT
    print(mermaid(result.ir) if args.format == "mermaid" else dot(result.ir), end="")
    return EXIT_OK


def cmd_rules(args: argparse.Namespace) -> int:
    from autocoder.diagnostics import rule_table
    from autocoder.validate.ast_policy import policy_rules

    print("compiler diagnostics (rules/diagnostics.yaml):")
    for code, rule in rule_table().items():
        print(f"  {code}  {rule['severity']:<7}  {rule['title']}")
    print("validation policy (rules/policy.yaml):")
    for section in ("ast", "architecture"):
        for code, rule in policy_rules()[section].items():
            print(f"  {code}  {rule['severity']:<7}  {rule['title']}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
