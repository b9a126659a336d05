"""``mlops-lite rerun``, ``mlops-lite run`` and ``mlops-lite diff``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from mlops_lite.cli.output import table
from mlops_lite.core.variables import STRICT_ENV
from mlops_lite.errors import ConfigError, DefinitionError, NotFoundError

__all__ = ["register"]

_RERUN_EXIT_CODES = """\
exit codes:
  0  every output of the rerun is identical to the original's
  1  some output differs, the rerun failed, or (--strict-env) the environment differs
  2  usage error: no such run, or a code commit with runs of several pipelines
"""


def register(subparsers: Any) -> None:
    """Add ``rerun``, ``run`` and ``diff`` to the ``mlops-lite`` parser."""
    rerun = subparsers.add_parser(
        "rerun",
        help="run a recorded run again from its pinned code and compare every output",
        description=(
            "Rebuild the run's code commit in a temporary directory (your HEAD, index and files "
            "stay untouched), run the same pipeline with the same parameters and configuration in "
            "a fresh interpreter, record it as a new run, and compare each output by content."
        ),
        epilog=_RERUN_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rerun.add_argument(
        "ref", help="run sha, unique sha prefix or run name, or a code commit (its latest run)"
    )
    rerun.add_argument(
        "--use-cache", action="store_true", help="let steps reuse cached outputs (off by default)"
    )
    rerun.add_argument(
        "--strict-env",
        action="store_true",
        help="fail when Python or recorded package versions differ",
    )
    rerun.add_argument("--json", action="store_true", help="print the report as JSON")
    rerun.set_defaults(handler=_rerun)

    run = subparsers.add_parser(
        "run",
        help="run a pipeline from a module or file, with a configuration file and parameters",
        description=(
            "Precedence of values: --param > the configuration file > defaults in the code. "
            "The configuration's content is recorded with the run."
        ),
    )
    run.add_argument(
        "target", help="<module_or_file>:<pipeline>, e.g. train.py:training or pkg.pipes:training"
    )
    run.add_argument("--config", "-c", help="configuration file (.yaml, .yml, .toml or .json)")
    run.add_argument(
        "--param", "-p", action="append", default=[], metavar="NAME=VALUE",
        help="a pipeline parameter; VALUE is read as JSON when it parses, else as a string "
        "(repeatable)",
    )  # fmt: skip
    run.add_argument(
        "--strict-env",
        action="store_true",
        help="fail when a Dask worker's Python or package versions differ from this "
        f"environment's (also: {STRICT_ENV}=1)",
    )
    run.add_argument("--json", action="store_true", help="print the run as JSON")
    run.add_argument(
        "--quiet", "-q", action="store_true",
        help="no console line per step (as MLOPS_LITE_QUIET=1)",
    )  # fmt: skip
    run.set_defaults(handler=_run)

    diff = subparsers.add_parser(
        "diff",
        help="compare two runs: parameters, configuration, code, environment, outputs, metadata",
    )
    diff.add_argument("run_a", help="run name, sha or unique sha prefix")
    diff.add_argument("run_b", help="run name, sha or unique sha prefix")
    diff.add_argument(
        "--patch", action="store_true", help="also print the code diff between the two pins"
    )
    diff.add_argument("--json", action="store_true", help="print JSON for scripts")
    diff.set_defaults(handler=_diff)


def _usage_error(error: Exception) -> int:
    print(f"mlops-lite: error: {error}", file=sys.stderr)
    return 2


# rerun ---------------------------------------------------------------------------


def _rerun(args: argparse.Namespace) -> int:
    from mlops_lite.operations.rerun import rerun

    try:
        report = rerun(args.ref, use_cache=args.use_cache, strict_env=args.strict_env)
    except NotFoundError as error:
        return _usage_error(error)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, default=repr))
        return report.exit_code
    for difference in report.environment_differences:
        print(f"mlops-lite: warning: environment differs: {difference}", file=sys.stderr)
    for difference in report.data_differences:
        print(f"mlops-lite: warning: data differs: {difference}", file=sys.stderr)
    print(f"original  {report.pipeline}/{report.original_name} ({report.original_sha[:10]})")
    print(f"code      {report.code_commit}")
    if report.rerun_sha:
        print(
            f"rerun     {report.pipeline}/{report.rerun_name}"
            f" ({report.rerun_sha[:10]}) {report.rerun_status}"
        )
    if report.outputs:
        print()
        rows = []
        for o in report.outputs:
            detail = ""
            if o.status != "identical":
                detail = f"{_size(o.a_size)} -> {_size(o.b_size)}"
                if o.max_abs_difference is not None:
                    detail += f", max abs difference {o.max_abs_difference:.6g}"
            rows.append([o.step, o.output, o.status, detail])
        print(table(rows, ["STEP", "OUTPUT", "RESULT", "DETAIL"]))
    print()
    if report.error:
        print(f"mlops-lite: rerun failed: {report.error}", file=sys.stderr)
        if report.log and not report.rerun_sha:
            print(report.log, file=sys.stderr)
    elif report.identical:
        print(f"reproduced: all {len(report.outputs)} outputs are identical")
    else:
        different = [o for o in report.outputs if not o.identical]
        print(f"not reproduced: {len(different)} of {len(report.outputs)} outputs differ")
    if report.strict_env and report.environment_differences:
        print("mlops-lite: the environment differs and --strict-env was given", file=sys.stderr)
    return report.exit_code


def _size(size: int | None) -> str:
    return "absent" if size is None else f"{size} B"


# run ---------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    from mlops_lite.operations.entrypoints import parse_parameters, run_target

    if args.quiet:
        import os

        from mlops_lite.execution.progress import QUIET_ENV

        os.environ[QUIET_ENV] = "1"
    try:
        parameters = parse_parameters(args.param)
        run = run_target(
            args.target,
            config_path=args.config,
            parameters=parameters,
            strict_env=args.strict_env,
        )
    except (ConfigError, DefinitionError) as error:
        return _usage_error(error)
    if args.json:
        print(json.dumps(run.to_dict(), indent=2, default=repr))
    else:
        print(f"run {run.pipeline_name}/{run.name} ({run.sha[:10]}): {run.status}")
    return 0 if run.status == "completed" else 1


# diff ---------------------------------------------------------------------------


def _diff(args: argparse.Namespace) -> int:
    from mlops_lite.operations.diff import diff

    try:
        result = diff(args.run_a, args.run_b, with_patch=args.patch)
    except NotFoundError as error:
        return _usage_error(error)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=repr))
        return 0
    a, b = result.a, result.b
    print(f"a  {a['pipeline']}/{a['name']} ({a['sha'][:10]}) {a['status']}")
    print(f"b  {b['pipeline']}/{b['name']} ({b['sha'][:10]}) {b['status']}")
    _section(
        "parameters",
        [[c.key, _show(c.a), _show(c.b), "" if c.same else "*"] for c in result.parameters],
    )
    _section(
        "configuration",
        [[c.key, _show(c.a), _show(c.b), "" if c.same else "*"] for c in result.config],
    )
    print(f"\ncode: {result.code_a[:10]} -> {result.code_b[:10]}")
    if not result.code_files:
        print("  same code")
    for change in result.code_files:
        renamed = f"{change['old_path']} -> " if change["old_path"] else ""
        print(f"  {change['status']:<5} {renamed}{change['path']}")
    python = result.python
    print("\nenvironment:")
    if python is not None:
        print(
            f"  python  {python.a} -> {python.b}"
            if not python.same
            else f"  python  {python.a} (same)"
        )
    for package in result.packages:
        print(f"  {package.key}  {_show(package.a)} -> {_show(package.b)}")
    _section(
        "outputs",
        [
            [o.step, o.output, o.status, (o.a or "-")[:10], (o.b or "-")[:10]]
            for o in result.outputs
        ],
        header=["STEP", "OUTPUT", "RESULT", "A", "B"],
    )
    _section(
        "metadata",
        [[c.key, _show(c.a), _show(c.b), "" if c.same else "*"] for c in result.metadata],
    )
    _section(
        "data files",
        [
            [c.key, _show(c.a)[:12], _show(c.b)[:12], "" if c.same else "*"]
            for c in result.data_files
        ],
    )
    if result.patch:
        print()
        sys.stdout.write(result.patch)
    return 0


def _section(title: str, rows: list[list[str]], header: list[str] | None = None) -> None:
    print(f"\n{title}:")
    if not rows:
        print("  none")
        return
    text = table(rows, header or ["KEY", "A", "B", ""])
    print("\n".join("  " + line for line in text.splitlines()))


def _show(value: Any) -> str:
    text = json.dumps(value, default=repr) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."
