"""The `mlops-lite` command: parses arguments, calls one library function, prints."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mlops_lite.errors import MlopsLiteError

__all__ = ["build_parser", "main"]

# The module registering each command. A command line naming one imports that
# module alone (most commands are mostly start-up); anything else (`--help`, a
# typo) registers them all, so help and "invalid choice" errors list every command.
_COMMAND_MODULES: dict[str, str] = {
    "runs": "runs", "logs": "runs",
    "push": "sharing", "pull": "sharing", "remote": "sharing",
    "gc": "retention",
    "rerun": "rerun", "run": "rerun", "diff": "rerun",
    "stack": "stacks",
    "artifact": "registry", "model": "registry",
    "ui": "ui", "report": "ui",
    "fsck": "fsck",
}  # fmt: skip


class _Version(argparse.Action):
    """``--version``: reads the package metadata only when asked (it costs ~30 ms)."""

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        from mlops_lite import __version__

        print(f"mlops-lite {__version__}")
        parser.exit()


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``mlops-lite`` argument parser: with every subcommand, or ``command``'s module's."""
    import importlib

    parser = argparse.ArgumentParser(
        prog="mlops-lite",
        description="Pipelines and runs recorded as git objects in your repository.",
    )
    parser.add_argument(
        "-C", dest="directory", default=None, help="run as if started in this directory"
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="print the version and exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    named = _COMMAND_MODULES.get(command or "")
    for module_name in [named] if named else dict.fromkeys(_COMMAND_MODULES.values()):
        importlib.import_module(f"mlops_lite.cli.{module_name}").register(subparsers)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    """The subcommand an argument list names (the first word that is not an option).

    None when top-level help or the version is asked for first: those list every command.
    """
    words = iter(argv)
    for word in words:
        if word == "-C":
            next(words, None)  # its directory
        elif word in ("-h", "--help", "--version"):
            return None
        elif not word.startswith("-"):
            return word
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_of(arguments))
    args = parser.parse_args(arguments)
    if args.directory:
        import os

        os.chdir(args.directory)
    try:
        return int(args.handler(args) or 0)
    except MlopsLiteError as error:
        print(f"mlops-lite: error: {error}", file=sys.stderr)
        return getattr(error, "exit_code", 1)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`mlops-lite runs list | head`): not an error.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
