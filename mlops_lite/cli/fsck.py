"""``mlops-lite fsck``: check every run's records and artifacts, report damage per run."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``fsck`` to the ``mlops-lite`` parser."""
    parser = subparsers.add_parser(
        "fsck",
        help="check every run's and registry's records and artifacts; report damage",
        description=(
            "Read back every run's records, logs and artifacts (checked against their "
            "digests) and the metadata added later, and every model and artifact "
            "registry's log and versions. Recovers abandoned runs, rebuilds a "
            "damaged index, sweeps leftovers of dead writers; never deletes a run. "
            "Exit code 1 when a run or registry is damaged."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--quiet", "-q", action="store_true", help="print damaged runs only")
    parser.set_defaults(handler=_fsck)


def _fsck(args: argparse.Namespace) -> int:
    from mlops_lite.operations.fsck import RegistryCheck, RunCheck, check_runs

    def show(check: RunCheck | RegistryCheck) -> None:
        if args.json or (args.quiet and check.ok):
            return
        if isinstance(check, RegistryCheck):
            counted, where = f"{check.versions} versions", ""
        else:
            counted, where = f"{check.artifacts} artifacts", f"  {check.sha[:10]}"
        if check.ok:
            print(f"ok       {check.name}  ({counted})")
            return
        print(f"DAMAGED  {check.name}{where}")
        for problem in check.problems:
            print(f"         {problem}")

    report = check_runs(progress=show)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        damaged = len(report.damaged) + len(report.damaged_registries)
        registries = f" and {len(report.registries)} registries" if report.registries else ""
        print(
            f"{len(report.runs)} runs{registries} checked, {damaged} damaged"
            + (
                ": restore them with `mlops-lite pull` from a clone that has them, "
                "or rerun their pipelines"
                if damaged
                else ""
            ),
            file=sys.stderr if damaged else sys.stdout,
        )
    return 1 if report.damaged or report.damaged_registries else 0
