"""``mlops-lite gc`` and ``mlops-lite runs delete|pin|unpin``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from mlops_lite.cli.output import format_time, table

__all__ = ["register", "register_runs"]

_REMOTE_HELP = (
    "delete for the whole team: record the deletion in refs/mlops/deleted and push to this "
    "remote now (default origin), which deletes the refs there; teammates' pulls and pushes "
    "honour it"
)


def register(subparsers: Any) -> None:
    """Add ``gc`` to the ``mlops-lite`` parser."""
    gc = subparsers.add_parser(
        "gc",
        help="delete old runs (refs only; `git gc` frees the space)",
        description=(
            "Delete runs beyond the newest N of each pipeline and/or older than an age; "
            "a run is deleted when every criterion given selects it. Pinned runs, runs in a "
            "model stage and running runs are never deleted. Only refs are removed: what the "
            "deleted runs alone reached is freed by the next `git gc`, and runs that reused "
            "a deleted run's outputs keep them. With --blobs, the artifact store's chunks "
            "that no ref here and no ref of the team's remote reaches, older than "
            "--blob-grace, are deleted too."
        ),
    )
    gc.add_argument("--keep-last", type=int, metavar="N", help="keep the newest N per pipeline")
    gc.add_argument("--older-than", metavar="AGE", help="only runs older than AGE (90d, 12h, 2w)")
    gc.add_argument(
        "--keep-tagged",
        action="store_true",
        help="also keep runs made from a tagged commit and runs annotated after they ran",
    )
    gc.add_argument("--pipeline", "-p", help="only runs of this pipeline")
    gc.add_argument(
        "--dry-run", "-n", action="store_true", help="show what would go, delete nothing"
    )
    gc.add_argument("--remote", nargs="?", const="origin", metavar="REMOTE", help=_REMOTE_HELP)
    gc.add_argument(
        "--blobs",
        action="store_true",
        help=(
            "also delete the artifact store's chunks that no run here or on the remote "
            "(--remote, else origin) uses; refuses, deleting nothing, if the remote "
            "cannot be read"
        ),
    )
    gc.add_argument(
        "--blob-grace",
        metavar="AGE",
        help="with --blobs: keep unused chunks younger than AGE (default 1d; e.g. 2h)",
    )
    gc.add_argument("--json", action="store_true", help="print JSON for scripts")
    gc.set_defaults(handler=_gc)


def register_runs(runs_sub: Any) -> None:
    """Add ``delete``, ``pin`` and ``unpin`` to ``mlops-lite runs``."""
    delete = runs_sub.add_parser(
        "delete",
        help="delete runs (refs only; `git gc` frees the space)",
        description="Delete runs by name, sha or sha prefix. Pinned runs are refused.",
    )
    delete.add_argument("runs", nargs="+", metavar="RUN", help="run names, shas or sha prefixes")
    delete.add_argument("--dry-run", "-n", action="store_true", help="show what would go")
    delete.add_argument("--remote", nargs="?", const="origin", metavar="REMOTE", help=_REMOTE_HELP)
    delete.add_argument("--json", action="store_true", help="print JSON for scripts")
    delete.set_defaults(handler=_delete)
    for name, unpin in (("pin", False), ("unpin", True)):
        parser = runs_sub.add_parser(
            name,
            help="keep runs from ever being deleted" if not unpin else "let gc delete runs again",
            description="Pins are shared: they travel with push and pull (refs/mlops/pins).",
        )
        parser.add_argument("runs", nargs="+", metavar="RUN", help="run names, shas or prefixes")
        parser.set_defaults(handler=_pin, unpin=unpin)


def _gc(args: argparse.Namespace) -> int:
    from mlops_lite.operations import retention

    result = retention.gc(
        keep_last=args.keep_last,
        older_than=args.older_than,
        keep_tagged=args.keep_tagged,
        pipeline=args.pipeline,
        remote=args.remote,
        dry_run=args.dry_run,
        blobs=args.blobs,
        blob_grace=args.blob_grace or retention.DEFAULT_BLOB_GRACE,
    )
    _report(result, args)
    return 0


def _delete(args: argparse.Namespace) -> int:
    from mlops_lite.operations import retention

    result = retention.delete_runs(args.runs, remote=args.remote, dry_run=args.dry_run)
    _report(result, args)
    return 0


def _pin(args: argparse.Namespace) -> int:
    from mlops_lite.operations import retention

    rows = retention.pin_runs(args.runs, unpin=args.unpin)
    verb = "unpinned" if args.unpin else "pinned"
    for row in rows:
        print(f"{verb} {row.pipeline}/{row.run_name} ({row.sha[:10]})")
    return 0


def _report(result: Any, args: argparse.Namespace) -> None:
    if args.json:
        print(
            json.dumps(
                {
                    "dry_run": result.dry_run,
                    "deleted": [
                        {"pipeline": r.pipeline, "name": r.run_name, "sha": r.sha}
                        for r in result.deleted
                    ],
                    "kept": result.kept,
                    "freed_bytes": result.freed_bytes,
                    "remote": result.remote.to_dict() if result.remote else None,
                    "chunks": result.chunks.to_dict() if result.chunks else None,
                },
                indent=2,
            )
        )
        return
    rows = [
        [row.sha[:10], row.pipeline, row.run_name, row.status, format_time(row.start_time)]
        for row in result.deleted[:50]
    ]
    if rows:
        print(table(rows, ["SHA", "PIPELINE", "RUN", "STATUS", "STARTED"]))
        if len(result.deleted) > 50:
            print(f"... and {len(result.deleted) - 50} more")
    verb = "would delete" if result.dry_run else "deleted"
    freed = _size(result.freed_bytes)
    line = f"{verb} {len(result.deleted)} run{'' if len(result.deleted) == 1 else 's'}"
    if result.deleted:
        line += f"; the next `git gc` frees {freed}" if freed else ""
    if result.kept:
        line += f"; kept {len(result.kept)} that would have gone:"
    print(line)
    for ref, why in sorted(result.kept.items())[:50]:
        print(f"  {ref.removeprefix('refs/mlops/runs/')}: {why}")
    if len(result.kept) > 50:
        print(f"  ... and {len(result.kept) - 50} more")
    if result.remote is not None:
        print(
            f"deleted {len(result.remote.deleted)} ref(s) on {result.remote.remote} "
            f"({len(result.remote.kept)} left: they changed there)"
        )
    if result.chunks is not None:
        _report_chunks(result.chunks)


def _report_chunks(chunks: Any) -> None:
    verb = "would delete" if chunks.dry_run else "deleted"
    print(
        f"artifact store: {verb} {chunks.deleted} of {chunks.stored} chunks "
        f"({_size(chunks.deleted_bytes)} of {_size(chunks.stored_bytes)}); "
        f"{chunks.referenced} in use"
    )
    unused_kept = [
        (chunks.recent, "younger than the grace period"),
        (chunks.untimed, "the store gives no time for them"),
        (chunks.waiting, "waiting here for upload"),
    ]
    for count, why in unused_kept:
        if count:
            print(f"  kept {count} unused: {why}")
    if chunks.cache_deleted:
        print(f"cache: {verb} {chunks.cache_deleted} chunks ({_size(chunks.cache_deleted_bytes)})")


def _size(count: int | None) -> str | None:
    if count is None:
        return None
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024  # type: ignore[assignment]
    return None
