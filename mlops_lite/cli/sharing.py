"""The `push`, `pull` and `remote setup` subcommands."""

from __future__ import annotations

import argparse
import sys
from typing import Any

_EXIT_CODES = """\
exit codes:
  0  done (for pull: also when some refs were kept because they differ; see the warnings)
  1  other error
  3  the remote rejected a ref update (never forced; pull, compare, then push again)
  4  the remote cannot be reached (wrong name, URL or path, host down)
  5  the remote refused the credentials (ssh key / agent, credential helper, token)
"""


__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the sharing subcommands to the `mlops-lite` parser."""
    for name, verb, summary, handler in (
        (
            "push",
            "Push every run (refs/mlops/*) and the objects it needs to",
            "push every run to a git remote",
            _push,
        ),
        (
            "pull",
            "Fetch every run (refs/mlops/*) and the objects it needs from",
            "fetch every run from a git remote",
            _pull,
        ),
    ):
        parser = subparsers.add_parser(
            name,
            help=summary,
            description=f"{verb} a git remote. Nothing is ever forced.",
            epilog=_EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.add_argument(
            "remote",
            nargs="?",
            default="origin",
            help="remote name or URL/path (default: origin)",
        )
        parser.add_argument("--quiet", "-q", action="store_true", help="no progress output")
        parser.add_argument(
            "--transport",
            choices=("auto", "git", "dulwich"),
            default="auto",
            help="auto (default) uses the git CLI when installed, else dulwich",
        )
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
        parser.set_defaults(handler=handler)

    remote = subparsers.add_parser("remote", help="configure a git remote for runs")
    actions = remote.add_subparsers(dest="remote_action", metavar="ACTION")
    actions.required = True
    setup = actions.add_parser(
        "setup",
        help="make a plain `git fetch` bring runs",
        description="Add the fetch refspec refs/mlops/*:refs/mlops/* to the remote "
        "(idempotent), so `git fetch`/`git pull` bring teammates' runs. `git push` is "
        "unchanged; share your runs with `mlops-lite push`.",
    )
    setup.add_argument("remote", nargs="?", default="origin", help="remote name (default: origin)")
    setup.set_defaults(handler=_setup)


def _push(args: argparse.Namespace) -> int:
    from mlops_lite.operations import sharing

    result = sharing.push(args.remote, quiet=args.quiet, transport=args.transport)
    _report(result, args, "pushed", "to")
    return 0


def _pull(args: argparse.Namespace) -> int:
    from mlops_lite.operations import sharing

    _route_warnings_to_stderr()
    result = sharing.pull(args.remote, quiet=args.quiet, transport=args.transport)
    _report(result, args, "pulled", "from")
    return 0


def _setup(args: argparse.Namespace) -> int:
    from mlops_lite.operations import sharing

    changed = sharing.setup_remote(args.remote)
    state = "added" if changed else "already had"
    print(f"remote {args.remote!r} {state} fetch refspec {sharing.REFSPEC}")
    return 0


def _report(result: Any, args: argparse.Namespace, verb: str, preposition: str) -> None:
    if args.json:
        import json

        print(json.dumps(result.to_dict(), indent=2, sort_keys=True))
        return
    from mlops_lite.store.archives import ARCHIVE_PREFIX
    from mlops_lite.store.layout import RUNS_PREFIX

    moved = result.created + result.updated
    archives = sum(name.startswith(ARCHIVE_PREFIX) for name in moved)
    others = len(moved) - archives - sum(name.startswith(RUNS_PREFIX) for name in moved)
    runs = result.runs
    what = f"{runs} run{'' if runs == 1 else 's'}"
    if archives:
        what += f" ({archives} archive ref{'' if archives == 1 else 's'})"
    if others:
        what += f" and {others} other ref{'' if others == 1 else 's'}"
    line = (
        f"{verb} {what} {preposition} {result.remote} "
        f"({result.transport}, {result.elapsed_seconds:.2f} s)"
    )
    if result.merged:
        line += f"; merged {_describe_merged(result.merged)} changed on both sides"
    if result.rejected:
        line += f"; kept {len(result.rejected)} local ref(s) that differ from the remote"
    print(line)


def _describe_merged(merged: list[str]) -> str:
    """``"1 run metadata ref and 2 model/artifact refs"``: a pull joins both kinds of chain."""
    from mlops_lite.store.layout import METADATA_PREFIX

    metadata = sum(name.startswith(METADATA_PREFIX) for name in merged)
    parts = [
        f"{count} {kind} ref{'' if count == 1 else 's'}"
        for count, kind in ((metadata, "run metadata"), (len(merged) - metadata, "model/artifact"))
        if count
    ]
    return " and ".join(parts)


def _route_warnings_to_stderr() -> None:
    # A pull's "kept local ref" warnings must reach the user even without logging set up.
    import logging

    logger = logging.getLogger("mlops_lite.operations.sharing")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("mlops-lite: warning: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
