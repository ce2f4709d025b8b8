"""The `autocoder` command line.

Exit codes: 0 success; 2 the blueprints (or the command line) have errors; 1 a build step
failed (doit's code). A user mistake never ends in a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from autocoder import __version__
from autocoder.layout import ARCHITECTURE, DEPLOYMENT

# Commands import what they need when they run: `autocoder build` on an up-to-date project
# must not pay for loading the compiler.

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BLUEPRINT = 2

DODO_TEXT = '''"""Autocoder build of this directory: run `doit` (also `doit list`, `doit info TASK`)."""

from autocoder.build.dodo import *  # noqa: F401,F403 - the tasks and DOIT_CONFIG
'''


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return EXIT_BLUEPRINT
    try:
        return int(args.run(args))
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
        help="run the doit build in DIR (any doit arguments may follow)",
        description="Run Autocoder's doit tasks in DIR without needing a dodo.py. "
        "Arguments after DIR go to doit: `autocoder build DIR list`, "
        "`autocoder build DIR info ir`, `autocoder build DIR clean`, `-n 2`...",
    )
    _dir_arg(build)
    build.add_argument("--strict", action="store_true", help="treat warnings as errors")
    build.add_argument("doit_args", nargs=argparse.REMAINDER, help="arguments for doit")
    build.set_defaults(run=cmd_build)

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
    graph.add_argument("--format", choices=("mermaid", "dot"), default="mermaid")
    graph.set_defaults(run=cmd_graph)

    rules = sub.add_parser("rules", help="list every diagnostic and policy rule with its meaning")
    rules.set_defaults(run=cmd_rules)
    return parser


def _dir_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "dir",
        type=Path,
        nargs="?",
        default=Path("."),
        help="blueprint directory holding architecture.yaml and deployment.yaml (default: .)",
    )


def _require_dir(directory: Path) -> bool:
    if not directory.is_dir():
        print(
            f"autocoder: {directory}: not a directory; fix: pass the folder that holds "
            f"{ARCHITECTURE} and {DEPLOYMENT}",
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
        print(format_report(result.diagnostics), file=sys.stdout if ok else sys.stderr)
    return EXIT_OK if ok else EXIT_BLUEPRINT


def cmd_ir(args: argparse.Namespace) -> int:
    from autocoder.compile import compile_directory
    from autocoder.diagnostics import format_report
    from autocoder.ir.write import write_ir

    if not _require_dir(args.dir):
        return EXIT_BLUEPRINT
    result = compile_directory(args.dir, strict=args.strict)
    if result.diagnostics:
        print(format_report(result.diagnostics), file=sys.stderr)
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
            f"`from autocoder.build.dodo import *` to it yourself",
            file=sys.stderr,
        )
        return EXIT_BLUEPRINT
    print(f"{'wrote' if write_if_changed(dodo, DODO_TEXT.encode()) else 'kept'} {dodo}")
    name = args.name or _system_name(directory)
    for filename, text in starter_blueprints(name).items():
        path = directory / filename
        if path.exists():
            print(f"kept {path} (blueprints are never overwritten)")
        else:
            write_if_changed(path, text.encode())
            print(f"wrote {path}")
    print(f"next: autocoder check {directory}  then  cd {directory} && doit")
    return EXIT_OK


def _system_name(directory: Path) -> str:
    raw = directory.resolve().name.lower().replace("-", "_")
    cleaned = "".join(ch for ch in raw if ch.isalnum() or ch == "_").lstrip("0123456789_")
    return (cleaned or "system")[:24]


def cmd_build(args: argparse.Namespace) -> int:
    from doit.cmd_base import ModuleTaskLoader
    from doit.doit_cmd import DoitMain

    from autocoder.build import dodo
    from autocoder.build.tasks import STRICT_ENV

    if not _require_dir(args.dir):
        return EXIT_BLUEPRINT
    if args.strict:
        os.environ[STRICT_ENV] = "1"
    from autocoder.build.reporter import AutocoderReporter

    os.chdir(args.dir)
    doit_args = list(args.doit_args)
    defaults = dodo.DOIT_CONFIG["default_tasks"]
    if not _names_a_task(doit_args, defaults if isinstance(defaults, list) else []):
        from autocoder.build.tasks import blueprint_outline

        if blueprint_outline(Path(".")) is None:
            # No outline (the blueprint is unreadable or too large, or the output directory
            # is unsafe): the per-component tasks do not exist, so the default task list
            # cannot run; `check` can, and says what is wrong.
            doit_args.append("check")
    code = int(DoitMain(ModuleTaskLoader(vars(dodo))).run(doit_args) or 0)
    if code == 2 and AutocoderReporter.failures_only:
        return EXIT_FAILED  # tasks skipped after a failed tier: still "a tier failed"
    return code


_DOIT_COMMANDS = frozenset(
    ("auto", "clean", "dumpdb", "forget", "help", "ignore", "info", "list", "reset-dep", "strace")
)


def _names_a_task(doit_args: list[str], tasks: list[str]) -> bool:
    """Whether the doit arguments name a command or a task (else doit runs the default tasks)."""
    known = _DOIT_COMMANDS | {"run", *tasks}
    return any(arg.split(":", 1)[0] in known for arg in doit_args if not arg.startswith("-"))


def cmd_schema(args: argparse.Namespace) -> int:
    from autocoder.schemas_gen import check_schemas, write_schemas

    if args.check:
        drift = check_schemas(args.out)
        for name in drift:
            print(
                f"schema drift: {name} differs from the models; fix: run `autocoder schema`", file=sys.stderr
            )
        return EXIT_FAILED if drift else EXIT_OK
    for path in write_schemas(args.out):
        print(f"wrote {path}")
    return EXIT_OK


def cmd_graph(args: argparse.Namespace) -> int:
    from autocoder.compile import compile_directory
    from autocoder.diagnostics import format_report
    from autocoder.graph import dot, mermaid

    if not _require_dir(args.dir):
        return EXIT_BLUEPRINT
    result = compile_directory(args.dir)
    if result.ir is None:
        print(format_report(result.diagnostics), file=sys.stderr)
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
