"""``mlops-lite ui`` (the dashboard, served locally) and ``mlops-lite report`` (static HTML)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``ui`` and ``report`` to the ``mlops-lite`` parser."""
    ui = subparsers.add_parser(
        "ui",
        help="the dashboard of this repository's runs, served on this machine (read-only)",
        description=(
            "Serve a read-only dashboard of the runs recorded in this repository: runs (filtered, "
            "paged, with parameter and metric columns), each run's DAG, steps with logs and "
            "previews of outputs, comparisons. Pages refresh as runs arrive, a teammate's after "
            "`mlops-lite pull` included. Nothing is fetched from the internet."
        ),
    )
    ui.add_argument(
        "--port", type=int, default=8237, help="port to listen on (default 8237; 0: any)"
    )
    ui.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only)",
    )
    ui.add_argument("--open", action="store_true", help="open the dashboard in a web browser")
    ui.set_defaults(handler=_serve)

    report = subparsers.add_parser(
        "report",
        help="write the dashboard's pages of runs or pipelines as static HTML",
        description=(
            "Write self-contained HTML pages (no network, no CDN) for the given runs, or the "
            "newest runs of the given pipelines: an index, each run, step and output, a "
            "comparison. Upload the folder as a CI artifact or publish it as a static site."
        ),
    )
    report.add_argument(
        "targets",
        nargs="+",
        metavar="RUN_OR_PIPELINE",
        help="run names, shas, prefixes or pipelines",
    )
    report.add_argument("-o", "--output", required=True, help="folder to write the pages into")
    report.add_argument(
        "--limit", type=int, default=100, help="newest runs taken per pipeline (default 100)"
    )
    report.set_defaults(handler=_report)


def _serve(args: argparse.Namespace) -> int:
    from mlops_lite.store.repository import find_project_root
    from mlops_lite.ui.server import serve

    serve(find_project_root(), host=args.host, port=args.port, open_browser=args.open)
    return 0


def _report(args: argparse.Namespace) -> int:
    import os

    from mlops_lite.ui.report import write_report

    written = write_report(args.targets, args.output, per_pipeline=args.limit)
    print(f"wrote {len(written)} pages; open {os.path.join(args.output, 'index.html')}")
    return 0
