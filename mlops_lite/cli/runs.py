"""``mlops-lite runs list|show`` and ``mlops-lite logs``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from mlops_lite.cli.output import format_duration, format_time, table
from mlops_lite.client import Client, Run

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``runs list|show`` and ``logs`` to the ``mlops-lite`` parser."""
    runs = subparsers.add_parser("runs", help="list and inspect recorded runs")
    runs_sub = runs.add_subparsers(dest="runs_command", metavar="COMMAND")
    runs_sub.required = True

    listing = runs_sub.add_parser("list", help="runs, newest first")
    listing.add_argument("--pipeline", "-p", help="only runs of this pipeline")
    listing.add_argument(
        "--status",
        choices=["running", "completed", "failed", "crashed", "cancelled", "unreadable"],
        help="only runs with this status (unreadable: written by a newer mlops-lite)",
    )
    listing.add_argument(
        "--limit", "-n", type=int, default=20, help="at most this many runs (default 20; 0: all)"
    )
    listing.add_argument("--json", action="store_true", help="print JSON for scripts")
    listing.set_defaults(handler=_list_runs)

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
    with Client() as client:
        runs = client.list_pipeline_runs(
            pipeline=args.pipeline, status=args.status, limit=args.limit or None
        )
        if args.json:
            print(json.dumps([_run_summary(run) for run in runs], indent=2))
            return 0
        if not runs:
            print("no runs recorded yet")
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
            ]
            for run in runs
        ]
        print(table(rows, ["SHA", "PIPELINE", "RUN", "STATUS", "STARTED", "DURATION", "BY"]))
    return 0


def _run_summary(run: Run) -> dict[str, Any]:
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
    with Client() as client:
        run = client.get_pipeline_run(args.run)
        if args.json:
            print(json.dumps(run.to_dict(), indent=2, default=repr))
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

        with Client() as client:
            for text in follow_logs(client, args.run, args.step):
                sys.stdout.write(text)
                sys.stdout.flush()
        return 0
    with Client() as client:
        step = client.get_pipeline_run(args.run).get_step(args.step)
        text = step.logs
        if step.error:
            text += ("" if not text or text.endswith("\n") else "\n") + step.error
        sys.stdout.write(text)
    return 0
