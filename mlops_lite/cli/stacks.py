"""``mlops-lite stack list|show|register|set``: the stacks in ``pyproject.toml``."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``stack list|show|register|set`` to the ``mlops-lite`` parser."""
    stack = subparsers.add_parser("stack", help="list, show, register and activate stacks")
    stack_sub = stack.add_subparsers(dest="stack_command", metavar="COMMAND")
    stack_sub.required = True

    listing = stack_sub.add_parser("list", help="every stack; the active one is marked *")
    listing.add_argument("--json", action="store_true", help="print JSON for scripts")
    listing.set_defaults(handler=_list_stacks)

    show = stack_sub.add_parser("show", help="one stack's settings (default: the active stack)")
    show.add_argument("name", nargs="?", help="stack name")
    show.add_argument("--json", action="store_true", help="print JSON for scripts")
    show.set_defaults(handler=_show_stack)

    add = stack_sub.add_parser(
        "register",
        help="add or replace a stack in pyproject.toml",
        description=(
            "Example: mlops-lite stack register fast --orchestrator pool --workers 2 --activate"
        ),
    )
    add.add_argument("name", help="stack name (letters, digits, '_' and '-')")
    add.add_argument("--orchestrator", "-o", required=True, help="local, pool or dask")
    add.add_argument(
        "--workers", type=int, help="pool: worker processes; dask: local cluster workers"
    )
    add.add_argument("--address", help="dask: the scheduler address, e.g. tcp://10.0.0.5:8786")
    add.add_argument("--gpus", type=int, help="pool: GPUs steps may ask for (default 0)")
    add.add_argument(
        "--strict-env",
        action="store_true",
        default=None,
        help="dask: refuse workers whose Python or package versions differ from the driver's",
    )
    add.add_argument("--activate", action="store_true", help="also make it the active stack")
    add.set_defaults(handler=_register_stack)

    use = stack_sub.add_parser(
        "set", help="make a stack the active one (active_stack in pyproject.toml)"
    )
    use.add_argument("name", help="stack name")
    use.set_defaults(handler=_set_stack)


def _root() -> str:
    from mlops_lite.store.repository import find_project_root

    return find_project_root()


def _list_stacks(args: argparse.Namespace) -> int:
    from mlops_lite.execution import stacks

    root = _root()
    active, _ = stacks.active_stack_name(root)
    found = stacks.list_stacks(root)
    if args.json:
        print(
            json.dumps(
                [{**s.to_dict(), "active": name == active} for name, s in found.items()], indent=2
            )
        )
        return 0
    for name, stack in found.items():
        settings = " ".join(f"{k}={v}" for k, v in sorted(stack.settings.items()))
        marker = "*" if name == active else " "
        print(f"{marker} {name:<16} {stack.orchestrator:<8} {settings}".rstrip())
    if active not in found:
        print(f"(the active stack {active!r} is not defined)")
    return 0


def _show_stack(args: argparse.Namespace) -> int:
    from mlops_lite.execution import stacks

    root = _root()
    active, source = stacks.active_stack_name(root)
    name = args.name or active
    stack = stacks.get_stack(root, name)
    if args.json:
        print(json.dumps({**stack.to_dict(), "active": name == active}, indent=2))
        return 0
    print(
        f"stack         {stack.name}{'  (active, from ' + source + ')' if name == active else ''}"
    )
    print(f"orchestrator  {stack.orchestrator}")
    for key, value in sorted(stack.settings.items()):
        print(f"  {key:<12}{value}")
    return 0


def _register_stack(args: argparse.Namespace) -> int:
    from mlops_lite.execution import stacks

    root = _root()
    given = (
        ("workers", args.workers),
        ("address", args.address),
        ("gpus", args.gpus),
        ("strict_env", args.strict_env),
    )
    settings = {key: value for key, value in given if value is not None}
    path = stacks.register_stack(root, stacks.Stack(args.name, args.orchestrator, settings))
    print(f"registered stack {args.name!r} in {path}")
    if args.activate:
        stacks.set_active_stack(root, args.name)
        print(f"active stack: {args.name}")
    return 0


def _set_stack(args: argparse.Namespace) -> int:
    from mlops_lite.execution import stacks

    path = stacks.set_active_stack(_root(), args.name)
    print(f"active stack: {args.name} (in {path})")
    if os.environ.get(stacks.ENV_STACK):
        print(f"note: {stacks.ENV_STACK}={os.environ[stacks.ENV_STACK]} is set and wins over it")
    return 0
