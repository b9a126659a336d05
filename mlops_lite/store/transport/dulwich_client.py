"""The dulwich transport, used when the git CLI is missing: push, fetch and local ref updates."""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from mlops_lite.errors import RefConflictError
from mlops_lite.store.layout import MLOPS_PREFIX, RUNS_PREFIX
from mlops_lite.store.refs import DiskRefs
from mlops_lite.store.transport.classify import _classify, _dulwich_errors
from mlops_lite.store.transport.result import (
    RUN_EXISTS,
    Direction,
    FetchReport,
    TransferResult,
)

__all__ = ["dulwich_fetch", "dulwich_list", "dulwich_push"]

if TYPE_CHECKING:
    from dulwich.client import GitClient
    from dulwich.repo import Repo


@contextmanager
def _dulwich_session(
    start_dir: str, remote: str, direction: Direction, progress: bool
) -> Iterator[tuple[Repo, GitClient, str, Callable[[bytes], None] | None]]:
    """Open the local repository and a dulwich client for `remote` (a name, URL or path)."""
    from dulwich.client import get_transport_and_path
    from dulwich.repo import Repo

    with Repo.discover(start_dir) as repo:
        config = repo.get_config_stack()
        location = remote
        section = (b"remote", remote.encode())
        keys = (b"pushurl", b"url") if direction == "push" else (b"url",)
        for key in keys:
            try:
                location = config.get(section, key).decode()
                break
            except KeyError:
                continue
        if "://" not in location and os.path.isdir(os.path.join(start_dir, location)):
            # Relative paths mean the caller's directory, as with `git push ../team.git`.
            location = os.path.abspath(os.path.join(start_dir, location))
        elif "://" not in location and not _looks_like_scp(location):
            raise _classify(remote, direction, f"'{remote}' does not appear to be a git repository")
        ssh_command = os.environ.get("GIT_SSH_COMMAND") or os.environ.get("GIT_SSH") or None
        try:
            client, path = get_transport_and_path(
                location,
                config=config,
                operation=direction,
                quiet=not progress,
                ssh_command=ssh_command,
            )
        except ValueError as error:
            raise _classify(remote, direction, f"not found: {error}") from error
        report: Callable[[bytes], None] | None = None
        if progress:

            def report(data: bytes) -> None:
                sys.stderr.write(data.decode("utf-8", "replace"))
                sys.stderr.flush()

        yield repo, client, path, report


def _looks_like_scp(location: str) -> bool:
    head = location.split("/", 1)[0]
    return ":" in head and not os.path.exists(location)


def _is_fast_forward(repo: Repo, old: bytes, new: bytes) -> bool:
    from dulwich.graph import can_fast_forward
    from dulwich.objects import ObjectID

    old_id, new_id = ObjectID(old), ObjectID(new)
    if old_id not in repo.object_store or new_id not in repo.object_store:
        return False
    try:
        return bool(can_fast_forward(repo, old_id, new_id))
    except (KeyError, AssertionError):
        return False  # not commits (an annotated tag, a tree): never move it silently


def dulwich_push(
    start_dir: str, remote: str, progress: bool, *, deletions: dict[str, str] | None = None
) -> TransferResult:
    """Push every `refs/mlops/*` ref with dulwich, never forcing.

    With ``deletions`` (``{ref: the value the remote must still have}``), delete
    those refs on the remote instead, each only if it still has that value.
    """
    from dulwich.objects import ObjectID
    from dulwich.protocol import ZERO_SHA
    from dulwich.refs import Ref

    result = TransferResult("push", remote, "dulwich")
    counted: list[int] = []

    with _dulwich_session(start_dir, remote, "push", progress) as (repo, client, path, report):
        ours = {
            name.decode(): sha
            for name, sha in repo.get_refs().items()
            if name.startswith(MLOPS_PREFIX.encode())
        }

        def update_refs(theirs: dict[Ref, ObjectID]) -> dict[Ref, ObjectID]:
            # Called with the remote's refs just read; the remote applies each update
            # only if the ref still has the old value we saw (compare-and-swap).
            for bucket in (result.created, result.updated, result.unchanged, result.deleted):
                bucket.clear()
            result.rejected.clear()
            result.kept.clear()
            wanted: dict[Ref, ObjectID] = {}
            if deletions is not None:
                for name, expected in sorted(deletions.items()):
                    current = theirs.get(Ref(name.encode()))
                    if current is None:
                        continue
                    if current != expected.encode():
                        result.kept[name] = "stale info"
                        continue
                    wanted[Ref(name.encode())] = ObjectID(ZERO_SHA)
                    result.deleted.append(name)
                return wanted
            for name, sha in sorted(ours.items()):
                current = theirs.get(Ref(name.encode()))
                if current == sha:
                    result.unchanged.append(name)
                    continue
                if current is None:
                    result.created.append(name)
                elif _is_fast_forward(repo, current, sha):
                    result.updated.append(name)
                else:
                    result.rejected[name] = (
                        "non-fast-forward" if current in repo.object_store else "fetch first"
                    )
                    continue
                wanted[Ref(name.encode())] = ObjectID(sha)
            return wanted

        def generate_pack_data(
            have: Any, want: Any, *, ofs_delta: bool = False, progress: Any = None
        ) -> Any:
            count, objects = repo.generate_pack_data(
                set(have), set(want), progress=progress, ofs_delta=ofs_delta
            )
            counted.append(count)
            return count, objects

        with _dulwich_errors(remote, "push"):
            sent = client.send_pack(
                path.encode() if isinstance(path, str) else path,
                update_refs,
                generate_pack_data=generate_pack_data,
                progress=report,
            )
    for name, status in (sent.ref_status or {}).items():
        if status is not None:
            ref = name.decode()
            if deletions is not None:
                result.kept[ref] = status
            else:
                result.rejected[ref] = status
            for bucket in (result.created, result.updated, result.deleted):
                if ref in bucket:
                    bucket.remove(ref)
    result.transferred_objects = sum(counted)
    return result


def dulwich_list(start_dir: str, remote: str, direction: Direction) -> dict[str, str]:
    """``{name: sha}`` of every ``refs/mlops/*`` ref the remote advertises."""
    from dulwich.refs import Ref

    prefix = MLOPS_PREFIX.encode()
    with _dulwich_session(start_dir, remote, direction, False) as (_, client, path, _report):
        with _dulwich_errors(remote, direction):
            listing: Any = client  # its get_refs is typed per transport
            refs = listing.get_refs(
                path.encode() if isinstance(path, str) else path, ref_prefix=[Ref(prefix)]
            )
    return _mlops_refs(getattr(refs, "refs", refs), prefix)


def dulwich_fetch(
    start_dir: str,
    remote: str,
    take: dict[str, str],
    objects_only: dict[str, str],
    progress: bool,
) -> FetchReport:
    """Fetch the objects of ``take`` and ``objects_only``; create or fast-forward ``take``'s refs.

    A run ref is only ever created: one that appeared here meanwhile is
    refused (``RUN_EXISTS``), and so is a ref the remote's value does not
    fast-forward.
    """
    from dulwich.objects import ObjectID
    from dulwich.refs import Ref

    report = FetchReport()
    wanted = {**objects_only, **take}
    with _dulwich_session(start_dir, remote, "pull", progress) as (repo, client, path, progress_to):
        packs_before = {pack.name() for pack in repo.object_store.packs}
        local = DiskRefs(repo.commondir())

        def determine_wants(refs: Any, depth: int | None = None) -> list[ObjectID]:
            advertised = _mlops_refs(refs, MLOPS_PREFIX.encode())
            # The remote's value now, for what it still has: it may have moved since listed.
            for name in list(wanted):
                if name in advertised:
                    wanted[name] = advertised[name]
            return sorted(
                {
                    ObjectID(sha.encode())
                    for sha in wanted.values()
                    if ObjectID(sha.encode()) not in repo.object_store
                }
            )

        with _dulwich_errors(remote, "pull"):
            client.fetch(
                path,
                _EveryRefAsHave(repo),  # type: ignore[arg-type]
                determine_wants=determine_wants,
                progress=progress_to,
                ref_prefix=[Ref(MLOPS_PREFIX.encode())],
            )
        for name in sorted(take):
            outcome = _update_local_ref(repo, local, name, wanted[name])
            if outcome == "rejected":
                report.rejected[name] = "non-fast-forward"
            elif outcome == "exists":
                report.rejected[name] = RUN_EXISTS
        new_packs = [pack for pack in repo.object_store.packs if pack.name() not in packs_before]
        report.objects = sum(len(pack.index) for pack in new_packs)
    return report


def _mlops_refs(advertised: Any, prefix: bytes) -> dict[str, str]:
    """The advertised refs under ``refs/mlops/``, ``{name: sha}`` as text (not peeled ones)."""
    refs: dict[str, str] = {}
    for name, sha in advertised.items():
        if not isinstance(name, bytes) or not name.startswith(prefix) or name.endswith(b"^{}"):
            continue
        if not isinstance(sha, bytes):
            continue
        refs[name.decode("utf-8", "replace")] = sha.decode("ascii", "replace")
    return refs


class _EveryRefAsHave:
    """The repository as `client.fetch` sees it, offering every ref's commit as a "have".

    dulwich offers only `refs/heads/*`, so a clone whose runs pin unpushed code would
    download that code again with every run.
    """

    def __init__(self, repo: Repo) -> None:
        self._repo = repo

    def __getattr__(self, name: str) -> Any:
        return getattr(self._repo, name)

    def get_graph_walker(self, heads: Any = None) -> Any:
        store = self._repo.object_store
        heads = sorted({sha for sha in self._repo.get_refs().values() if sha in store})
        return self._repo.get_graph_walker(heads=heads)


def _update_local_ref(repo: Repo, refs: DiskRefs, name: str, sha: str) -> str:
    """Create or fast-forward one local ref with compare-and-swap; never move it backwards.

    A run ref is only ever created: if one appeared meanwhile, that is ``exists``.
    """
    for attempt in range(50):
        current = refs.read(name)
        if current == sha:
            return "unchanged"
        if current is not None and name.startswith(RUNS_PREFIX):
            return "exists"
        if current is not None and not _is_fast_forward(repo, current.encode(), sha.encode()):
            return "rejected"
        try:
            refs.compare_and_swap(name, current, sha)
            return "created" if current is None else "updated"
        except RefConflictError:
            pass
        # Another writer just moved the ref: re-read and decide again.
        time.sleep(random.uniform(0.001, 0.01) * (1 + attempt % 10))
    raise RefConflictError(f"{name} kept changing while pulling; run the pull again")
