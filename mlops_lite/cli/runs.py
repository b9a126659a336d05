"""``mlops-lite runs list|show|compare`` and ``mlops-lite logs``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from mlops_lite.cli.output import format_duration, format_time, format_value, open_client, table
from mlops_lite.core.columns import Column, parse_columns

if TYPE_CHECKING:
    from mlops_lite.client import Client, Run, RunTable

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``runs list|show|compare`` and ``logs`` to the ``mlops-lite`` parser."""
    runs = subparsers.add_parser("runs", help="list and inspect recorded runs")
    runs_sub = runs.add_subparsers(dest="runs_command", metavar="COMMAND")
    runs_sub.required = True

    listing = runs_sub.add_parser("list", help="runs, newest first")
    listing.add_argument("--pipeline", "-p", help="only runs of this pipeline")
    listing.add_argument(
        "--status",
        choices=["running", "completed", "failed", "crashed", "cancelled", "unreadable"],
        help="only runs with this status (unreadable: cannot be read here; `runs show` says why)",
    )
    listing.add_argument("--author", help="only runs by this e-mail")
    listing.add_argument(
        "--search", "-s", help="part of a run's name, pipeline, author or host, or a sha prefix"
    )
    listing.add_argument(
        "--limit", "-n", type=int, default=20, help="at most this many runs (default 20; 0: all)"
    )
    listing.add_argument(
        "--columns", "-c", action="append", default=[], metavar="COLUMNS",
        help="parameters and metrics to show, e.g. param:lr,metric:accuracy "
        "(metric:STEP.NAME for one step's value)",
    )  # fmt: skip
    listing.add_argument(
        "--sort",
        metavar="COLUMN",
        help="order by a numeric column, highest first (e.g. metric:accuracy)",
    )
    listing.add_argument("--ascending", action="store_true", help="with --sort: lowest first")
    listing.add_argument("--json", action="store_true", help="print JSON for scripts")
    listing.set_defaults(handler=_list_runs)

    compare = runs_sub.add_parser(
        "compare",
        help="runs side by side: every parameter and metric, differences marked *",
        description=(
            "Metrics are the runs' metadata and each step's (metric:NAME is the last step to "
            "log NAME; metric:STEP.NAME one step's). --csv prints one line per run."
        ),
    )
    compare.add_argument("runs", nargs="+", metavar="RUN", help="run names, shas or sha prefixes")
    compare.add_argument("--columns", "-c", action="append", default=[], help="only these columns")
    compare.add_argument(
        "--differences", "-d", action="store_true", help="only columns whose values differ"
    )
    output = compare.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON for scripts")
    output.add_argument("--csv", action="store_true", help="print CSV, one line per run")
    compare.set_defaults(handler=_compare_runs)

    from mlops_lite.cli.retention import register_runs

    register_runs(runs_sub)

    show = runs_sub.add_parser("show", help="one run: its steps, status, cache use, outputs")
    show.add_argument("run", help="run name, sha or unique sha prefix")
    show.add_argument("--json", action="store_true", help="print JSON for scripts")
    show.set_defaults(handler=_show_run)

    logs = subparsers.add_parser("logs", help="the captured output of one step of a run")
    logs.add_argument("run", help="run name, sha or unique sha prefix")
    logs.add_argument("step", help="step name, e.g. train or inc_2")
    logs.add_argument(
        "-f", "--follow", action="store_true",
        help="keep printing while the step runs (waits for it to start), until it ends",
    )  # fmt: skip
    logs.set_defaults(handler=_show_logs)


def _list_runs(args: argparse.Namespace) -> int:
    columns = parse_columns(args.columns)
    order_by = Column.parse(args.sort) if args.sort else None
    with open_client() as client:
        if args.json and not args.limit:
            _print_all_as_json(client, args, columns, order_by)
            return 0
        runs = client.find_runs(
            pipeline=args.pipeline,
            status=args.status,
            author=args.author,
            text=args.search,
            order_by=order_by,
            ascending=args.ascending,
            limit=args.limit or None,
        ).runs
        values = client.run_table(runs, columns)
        if args.json:
            summaries = [_run_summary(run) for run in runs]
            if columns:
                for summary, row in zip(summaries, values.to_dict()["runs"], strict=True):
                    summary["values"] = row["values"]
            print(json.dumps(summaries, indent=2))
            return 0
        if not runs:
            print("no runs recorded yet" if not _filtered(args) else "no run matches")
            return 0
        rows = [
            [
                run.sha[:10],
                run.pipeline_name,
                run.name,
                run.status,
                format_time(run.start_time),
                format_duration(run.duration),
                f"{run.author_email or '?'} on {run.host or '?'}",
                *(format_value(values.value(row, column)) for column in columns),
            ]
            for row, run in enumerate(runs)
        ]
        header = ["SHA", "PIPELINE", "RUN", "STATUS", "STARTED", "DURATION", "BY"]
        print(table(rows, [*header, *(column.name for column in columns)]))
    return 0


def _print_all_as_json(
    client: Client, args: argparse.Namespace, columns: list[Column], order_by: Column | None
) -> None:
    """Every run as one JSON array, written a page at a time: flat memory at 100,000 runs."""
    pages = client.iter_runs(
        pipeline=args.pipeline, status=args.status, author=args.author, text=args.search,
        order_by=order_by, ascending=args.ascending,
    )  # fmt: skip
    out = sys.stdout
    separator = "[\n"
    for runs in pages:
        summaries = [_run_summary(run) for run in runs]
        if columns:
            values = client.run_table(runs, columns).to_dict()["runs"]
            for summary, row in zip(summaries, values, strict=True):
                summary["values"] = row["values"]
        for summary in summaries:
            out.write(separator + _indented(json.dumps(summary, indent=2)))
            separator = ",\n"
    out.write("\n]\n" if separator != "[\n" else "[]\n")


def _indented(text: str) -> str:
    """One element of a JSON array as ``json.dumps(array, indent=2)`` lays it out."""
    return "  " + text.replace("\n", "\n  ")


def _filtered(args: argparse.Namespace) -> bool:
    return any((args.pipeline, args.status, args.author, args.search))


def _compare_runs(args: argparse.Namespace) -> int:
    columns = parse_columns(args.columns) or None
    with open_client() as client:
        compared = client.compare_runs(args.runs, columns)
        if args.differences:
            compared = type(compared)(compared.runs, compared.differing_columns(), compared.values)
        if args.json:
            print(json.dumps(compared.to_dict(), indent=2, default=repr))
        elif args.csv:
            sys.stdout.write(compared.to_csv())
        else:
            _print_comparison(compared)
    return 0


def _print_comparison(compared: RunTable) -> None:
    for number, run in enumerate(compared.runs, 1):
        print(f"{number}  {run.pipeline_name}/{run.name} ({run.sha[:10]}) {run.status}")
    print()
    if not compared.columns:
        print("no parameters or metrics to compare")
        return
    rows = [
        [
            column.name,
            *(format_value(value) for value in compared.column_values(column)),
            "*" if compared.differs(column) else "",
        ]
        for column in compared.columns
    ]
    print(table(rows, ["COLUMN", *(str(n) for n in range(1, len(compared.runs) + 1)), ""]))


def _run_summary(run: Run) -> dict[str, Any]:
    if not run.readable:
        return run.to_dict()
    return {
        "sha": run.sha,
        "pipeline": run.pipeline_name,
        "name": run.name,
        "status": run.status,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "code_commit": run.code_commit,
        "author": run.author,
        "host": run.host,
    }


def _show_run(args: argparse.Namespace) -> int:
    with open_client() as client:
        run = client.get_pipeline_run(args.run)
        if args.json:
            print(json.dumps(run.to_dict(), indent=2, default=repr))
            return 0
        if not run.readable:
            print(f"run       {run.pipeline_name}/{run.name}")
            print(f"sha       {run.sha}")
            print(f"status    {run.status}")
            print(f"error     {run.error}")
            return 0
        code = run.code
        dirty = " (dirty work tree, snapshot)" if code.get("dirty") else ""
        print(f"run       {run.pipeline_name}/{run.name}")
        print(f"sha       {run.sha}")
        print(f"status    {run.status}")
        print(f"code      {run.code_commit}{dirty}")
        print(f"started   {format_time(run.start_time)}   duration {format_duration(run.duration)}")
        print(
            f"author    {run.author.get('name', '?')} <{run.author.get('email', '?')}>"
            f" on {run.host or '?'}"
        )
        stack = run.stack
        print(f"executed  {run.orchestrator}" + (f" (stack {stack})" if stack else ""))
        if run.reproduces:
            print(f"reproduces {run.reproduces}")
        if run.parameters:
            print("params    " + ", ".join(f"{k}={v!r}" for k, v in run.parameters.items()))
        if run.metadata:
            print("metadata  " + json.dumps(run.metadata, default=repr))
        if run.error:
            print(f"error     {run.error}")
        print()
        rows = []
        for step in run.steps.values():
            cached = ""
            if step.cached and step.cached_from:
                cached = f"from {step.cached_from['run']}"
            outputs = ", ".join(f"{n} ({a.size} B)" for n, a in step.outputs.items())
            rows.append([step.name, step.status, cached, format_duration(step.duration), outputs])
        print(table(rows, ["STEP", "STATUS", "CACHED", "DURATION", "OUTPUTS"]))
        data = [
            [step.name, path, content_id[:12]]
            for step in run.steps.values()
            for path, content_id in step.data_files.items()
        ]
        if data:
            print("\ndata files read:")
            print(table(data, ["STEP", "FILE", "CONTENT"]))
    return 0


def _show_logs(args: argparse.Namespace) -> int:
    if args.follow:
        from mlops_lite.client.follow import follow_logs

        with open_client() as client:
            for text in follow_logs(client, args.run, args.step):
                sys.stdout.write(text)
                sys.stdout.flush()
        return 0
    with open_client() as client:
        step = client.get_pipeline_run(args.run).get_step(args.step)
        text = step.logs
        if step.error:
            text += ("" if not text or text.endswith("\n") else "\n") + step.error
        sys.stdout.write(text)
    return 0
