"""Moving `refs/mlops/*` and the objects they need to and from git remotes: git CLI or dulwich."""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import IO, TYPE_CHECKING, Any, Literal

from mlops_lite.errors import (
    AuthenticationError,
    RefConflictError,
    RemoteError,
    RemoteRejectedError,
    RemoteUnreachableError,
)

if TYPE_CHECKING:
    from dulwich.client import GitClient
    from dulwich.repo import Repo

MLOPS_PREFIX = "refs/mlops/"
RUNS_PREFIX = "refs/mlops/runs/"
# No leading `+`: runs are immutable and uniquely named, so a ref that would need
# forcing is a real conflict to report, never something to overwrite.
REFSPEC = "refs/mlops/*:refs/mlops/*"

# Exit codes of the `mlops-lite` command, set as `exit_code` on the errors raised here.
EXIT_REJECTED = 3
EXIT_UNREACHABLE = 4
EXIT_AUTHENTICATION = 5

Implementation = Literal["git", "dulwich"]
Direction = Literal["push", "pull"]


@dataclass
class TransferResult:
    """What one push or pull did; ref names are full (`refs/mlops/...`)."""

    direction: Direction
    remote: str
    transport: Implementation
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    # ref -> why it was refused (non-fast-forward, hook declined, ...); nothing is forced
    rejected: dict[str, str] = field(default_factory=dict)
    transferred_objects: int | None = None
    transferred_bytes: int | None = None
    elapsed_seconds: float = 0.0

    @property
    def runs(self) -> int:
        """How many run refs this transfer created or moved."""
        return sum(name.startswith(RUNS_PREFIX) for name in self.created + self.updated)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (used by `--json`)."""
        return {**asdict(self), "runs": self.runs}


def git_available() -> bool:
    """Whether the `git` CLI is on PATH (the preferred transport)."""
    return shutil.which("git") is not None


def push(
    start_dir: str, remote: str, *, implementation: Implementation, progress: bool
) -> TransferResult:
    """Push every `refs/mlops/*` ref (and the objects it needs) to `remote`, never forcing."""
    began = time.perf_counter()
    if implementation == "git":
        result = _git_push(start_dir, remote, progress)
    else:
        result = _dulwich_push(start_dir, remote, progress)
    result.elapsed_seconds = time.perf_counter() - began
    return result


def pull(
    start_dir: str, remote: str, *, implementation: Implementation, progress: bool
) -> TransferResult:
    """Fetch every `refs/mlops/*` ref of `remote` into the same local refs, never forcing."""
    began = time.perf_counter()
    if implementation == "git":
        result = _git_pull(start_dir, remote, progress)
    else:
        result = _dulwich_pull(start_dir, remote, progress)
    result.elapsed_seconds = time.perf_counter() - began
    return result


def add_fetch_refspec(start_dir: str, remote: str) -> bool:
    """Add `REFSPEC` to `remote.<remote>.fetch`; False when it was already there."""
    from dulwich.repo import Repo

    with Repo.discover(start_dir) as repo:
        config = repo.get_config()
        section = (b"remote", remote.encode())
        if not config.has_section(section):
            raise RemoteError(
                f"no remote named {remote!r} in this repository: add it with "
                f"`git remote add {remote} <url>` first"
            )
        existing = list(config.get_multivar(section, b"fetch"))
        if any(spec.lstrip(b"+") == REFSPEC.encode() for spec in existing):
            return False
    if git_available():
        # Prefer git so its own locking and formatting of .git/config are used.
        _run_git(["config", "--add", f"remote.{remote}.fetch", REFSPEC], start_dir)
        return True
    with Repo.discover(start_dir) as repo:
        config = repo.get_config()
        config.add(section, b"fetch", REFSPEC.encode())
        config.write_to_path()
    return True


# --- errors ------------------------------------------------------------------------------

_AUTH_SIGNS = (
    "permission denied",
    "authentication failed",
    "returned error: 401",
    "returned error: 403",
    "http 401",
    "http 403",
    "could not read username",
    "could not read password",
    "terminal prompts disabled",
    "host key verification failed",
    "invalid credentials",
)
_UNREACHABLE_SIGNS = (
    "does not appear to be a git repository",
    "not a git repository",
    "could not resolve host",
    "could not resolve hostname",
    "name or service not known",
    "connection refused",
    "no such file or directory",
    "unable to connect",
    "failed to connect",
    "connection timed out",
    "network is unreachable",
    "no route to host",
    "connection reset",
    "not found",
    "repository not exported",
    "unable to access",
    "could not read from remote repository",
    "the remote end hung up",
)


def _classify(remote: str, direction: Direction, text: str) -> RemoteError:
    """One `RemoteError` subclass with a one-line message, from git's or dulwich's words."""
    lines = [line.strip() for line in re.split(r"[\r\n]+", text) if line.strip()]
    lowered = text.lower()
    verb = "push to" if direction == "push" else "pull from"
    if any(sign in lowered for sign in _AUTH_SIGNS):
        detail = _first_line_with(lines, _AUTH_SIGNS)
        error: RemoteError = AuthenticationError(
            f"{verb} {remote!r} failed: the remote refused our credentials ({detail}); "
            "check your ssh key or agent, or the git credential helper / token for this host"
        )
        error.exit_code = EXIT_AUTHENTICATION  # type: ignore[attr-defined]
    elif any(sign in lowered for sign in _UNREACHABLE_SIGNS) or not lines:
        detail = _first_line_with(lines, _UNREACHABLE_SIGNS) if lines else "no answer"
        error = RemoteUnreachableError(
            f"{verb} {remote!r} failed: the remote cannot be reached ({detail}); "
            "check the name or URL (`git remote -v`), the path and the network"
        )
        error.exit_code = EXIT_UNREACHABLE  # type: ignore[attr-defined]
    else:
        error = RemoteError(f"{verb} {remote!r} failed: {lines[-1]}")
    return error


def _first_line_with(lines: list[str], signs: tuple[str, ...]) -> str:
    for line in lines:
        if any(sign in line.lower() for sign in signs):
            return line.removeprefix("fatal: ").removeprefix("error: ")[:300]
    return lines[-1][:300]


def rejected_error(result: TransferResult) -> RemoteRejectedError:
    """The error for a push the remote refused in part; `result` says what did go through."""
    names = ", ".join(f"{name} ({why})" for name, why in sorted(result.rejected.items()))
    error = RemoteRejectedError(
        f"push to {result.remote!r} rejected {len(result.rejected)} ref(s), nothing was forced: "
        f"{names}; run `mlops-lite pull {result.remote}` to fetch their side, then compare "
        "(`git log <ref>`) and keep yours under a new name if both must stay"
    )
    error.exit_code = EXIT_REJECTED  # type: ignore[attr-defined]
    error.result = result  # type: ignore[attr-defined]
    return error


# --- git CLI -----------------------------------------------------------------------------


def _run_git(
    args: list[str], cwd: str, *, show_stderr: bool = False, check: bool = True
) -> tuple[int, str, str]:
    """Run git; stderr is always captured (to classify errors) and echoed when asked."""
    env = dict(os.environ)
    if not _stdin_is_terminal():
        # Without a terminal a credential prompt would hang or fail obscurely.
        env.setdefault("GIT_TERMINAL_PROMPT", "0")
    process = subprocess.Popen(
        ["git", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    chunks: list[bytes] = []
    reader = threading.Thread(
        target=_drain, args=(process.stderr, chunks, show_stderr), daemon=True
    )
    reader.start()
    stdout = process.stdout.read()
    code = process.wait()
    reader.join()
    stderr = b"".join(chunks).decode("utf-8", "replace")
    if check and code != 0:
        raise RemoteError(f"git {' '.join(args)} failed: {stderr.strip()}")
    return code, stdout.decode("utf-8", "replace"), stderr


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except ValueError:  # closed
        return False


def _drain(stream: IO[bytes], chunks: list[bytes], echo: bool) -> None:
    pending = ""
    while chunk := os.read(stream.fileno(), 65536):
        chunks.append(chunk)
        if echo:
            # Echo whole lines (progress redraws end in \r) minus `fetch -v`'s one line per
            # unchanged ref: with 1,000 runs those would bury the progress.
            pending += chunk.decode("utf-8", "replace")
            *complete, pending = re.split(r"(?<=[\r\n])", pending)
            shown = [line for line in complete if not line.startswith(" = [up to date]")]
            sys.stderr.write("".join(shown))
            sys.stderr.flush()
    if echo and pending:
        sys.stderr.write(pending)


# "Writing objects: 100% (8008/8008), 1.20 MiB | ..." (push) and the fetch equivalents
_OBJECTS_LINE = re.compile(
    r"(?:Writing|Receiving|Unpacking) objects: 100% \((\d+)/\d+\)"
    r"(?:, ([\d.]+) (bytes|KiB|MiB|GiB))?"
)
_TOTAL_LINE = re.compile(r"^Total (\d+) \(delta", re.MULTILINE)
_UNITS = {"bytes": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}


def _objects_and_bytes(stderr: str) -> tuple[int | None, int | None]:
    found = _OBJECTS_LINE.findall(stderr)
    if found:
        count, size, unit = found[-1]
        return int(count), int(float(size) * _UNITS[unit]) if size else None
    total = _TOTAL_LINE.search(stderr)
    return (int(total.group(1)), None) if total else (None, None)


def _git_push(start_dir: str, remote: str, progress: bool) -> TransferResult:
    code, stdout, stderr = _run_git(
        # --progress always: the counts feed the result; they reach the terminal only if asked.
        [
            "push",
            "--porcelain",
            "--progress",
            "--no-follow-tags",
            "--no-recurse-submodules",
            remote,
            REFSPEC,
        ],
        start_dir,
        show_stderr=progress,
        check=False,
    )
    result = TransferResult("push", remote, "git")
    for line in stdout.splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or ":" not in parts[1]:
            continue
        flag, target, summary = parts[0], parts[1].split(":", 1)[1], parts[2]
        if flag == "*":
            result.created.append(target)
        elif flag == " ":
            result.updated.append(target)
        elif flag == "=":
            result.unchanged.append(target)
        elif flag == "!":
            # "[rejected] (non-fast-forward)", "[remote rejected] (hook declined)"
            reason = re.match(r"\[([^\]]*)\](?: \((.*)\))?", summary)
            result.rejected[target] = (reason.group(2) or reason.group(1)) if reason else summary
    if code != 0 and not result.rejected:
        raise _classify(remote, "push", stderr)
    objects, size = _objects_and_bytes(stderr)
    changed = bool(result.created or result.updated)
    result.transferred_objects = objects if objects is not None else (None if changed else 0)
    result.transferred_bytes = size if size is not None else (None if changed else 0)
    return result


def _local_refs(start_dir: str) -> dict[str, str]:
    _, stdout, _ = _run_git(
        ["for-each-ref", "--format=%(objectname) %(refname)", MLOPS_PREFIX], start_dir
    )
    pairs = (line.split(" ", 1) for line in stdout.splitlines() if line)
    return {name: sha for sha, name in pairs}


# " * [new ref]   refs/mlops/a -> refs/mlops/a" / " ! [rejected]  a -> a  (non-fast-forward)"
_FETCH_LINE = re.compile(r"^ (.) (\[[^\]]+\]|\S+)\s+(\S+)\s+->\s+(\S+)(?:\s+\((.+)\))?$")


def _git_pull(start_dir: str, remote: str, progress: bool) -> TransferResult:
    before = _local_refs(start_dir)
    code, _, stderr = _run_git(
        # --no-prune: a user's fetch.prune must never delete local runs the remote lacks;
        # --no-tags: never touch the user's tags; full output: parseable ref lines.
        [
            "-c",
            "fetch.output=full",
            "fetch",
            "-v",
            "--progress",
            "--no-prune",
            "--no-tags",
            "--no-write-fetch-head",
            "--no-recurse-submodules",
            remote,
            REFSPEC,
        ],
        start_dir,
        show_stderr=progress,
        check=False,
    )
    result = TransferResult("pull", remote, "git")
    for line in re.split(r"[\r\n]+", stderr):
        match = _FETCH_LINE.match(line)
        if match is None:
            continue
        flag, summary, target, reason = (
            match.group(1),
            match.group(2),
            match.group(4),
            match.group(5),
        )
        if flag == "!":
            result.rejected[target] = reason or summary.strip("[]")
        elif flag == "=":
            result.unchanged.append(target)
    if code != 0 and not result.rejected:
        raise _classify(remote, "pull", stderr)
    after = _local_refs(start_dir)
    result.created = sorted(name for name in after if name not in before)
    result.updated = sorted(
        name for name in after if name in before and before[name] != after[name]
    )
    result.transferred_objects, result.transferred_bytes = _objects_and_bytes(stderr)
    if result.transferred_objects is None and not result.created and not result.updated:
        result.transferred_objects, result.transferred_bytes = 0, 0
    return result


# --- dulwich -----------------------------------------------------------------------------


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


@contextmanager
def _dulwich_errors(remote: str, direction: Direction) -> Iterator[None]:
    """Turn dulwich's exceptions into the public `RemoteError` classes."""
    from dulwich.client import HTTPProxyUnauthorized, HTTPUnauthorized
    from dulwich.errors import GitProtocolError, HangupException, NotGitRepository

    try:
        yield
    except (HTTPUnauthorized, HTTPProxyUnauthorized) as error:
        raise _classify(remote, direction, f"HTTP 401 authentication failed: {error}") from error
    except NotGitRepository as error:
        raise _classify(
            remote, direction, f"does not appear to be a git repository: {error}"
        ) from error
    except HangupException as error:
        text = str(error) if str(error).strip() else "the remote end hung up"
        raise _classify(remote, direction, text) from error
    except (GitProtocolError, OSError) as error:
        raise _classify(remote, direction, f"{type(error).__name__}: {error}") from error


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


def _dulwich_push(start_dir: str, remote: str, progress: bool) -> TransferResult:
    from dulwich.objects import ObjectID
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
            for bucket in (result.created, result.updated, result.unchanged):
                bucket.clear()
            result.rejected.clear()
            wanted: dict[Ref, ObjectID] = {}
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
            result.rejected[ref] = status
            for bucket in (result.created, result.updated):
                if ref in bucket:
                    bucket.remove(ref)
    result.transferred_objects = sum(counted)
    return result


def _dulwich_pull(start_dir: str, remote: str, progress: bool) -> TransferResult:
    from dulwich.objects import ObjectID
    from dulwich.refs import Ref

    result = TransferResult("pull", remote, "dulwich")
    prefix = MLOPS_PREFIX.encode()
    with _dulwich_session(start_dir, remote, "pull", progress) as (repo, client, path, report):
        packs_before = {pack.name() for pack in repo.object_store.packs}

        def determine_wants(refs: Any, depth: int | None = None) -> list[ObjectID]:
            return sorted(
                {
                    sha
                    for name, sha in refs.items()
                    if name.startswith(prefix)
                    and not name.endswith(b"^{}")
                    and sha not in repo.object_store
                }
            )

        with _dulwich_errors(remote, "pull"):
            fetched = client.fetch(
                path,
                _EveryRefAsHave(repo),  # type: ignore[arg-type]
                determine_wants=determine_wants,
                progress=report,
                ref_prefix=[Ref(prefix)],
            )
        theirs = {
            name: sha
            for name, sha in fetched.refs.items()
            if name.startswith(prefix) and sha is not None and not name.endswith(b"^{}")
        }
        for name, sha in sorted(theirs.items()):
            outcome = _update_local_ref(repo, name, sha)
            if outcome == "rejected":
                result.rejected[name.decode()] = "non-fast-forward"
            else:
                getattr(result, outcome).append(name.decode())
        new_packs = [pack for pack in repo.object_store.packs if pack.name() not in packs_before]
        result.transferred_objects = sum(len(pack.index) for pack in new_packs)
    return result


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


def _update_local_ref(repo: Repo, name: bytes, sha: bytes) -> str:
    """Create or fast-forward one local ref with compare-and-swap; never move it backwards."""
    from dulwich.file import FileLocked
    from dulwich.objects import ObjectID
    from dulwich.refs import Ref

    ref, new = Ref(name), ObjectID(sha)
    for attempt in range(50):
        try:
            current: ObjectID | None = repo.refs[ref]
        except KeyError:
            current = None
        if current == new:
            return "unchanged"
        if current is not None and not _is_fast_forward(repo, current, new):
            return "rejected"
        try:
            if current is None:
                if repo.refs.add_if_new(ref, new):
                    return "created"
            elif repo.refs.set_if_equals(ref, current, new):
                return "updated"
        except FileLocked:
            pass
        # Another writer holds or just moved the ref: re-read and decide again.
        time.sleep(random.uniform(0.001, 0.01) * (1 + attempt % 10))
    raise RefConflictError(f"{name.decode()} kept changing while pulling; run the pull again")
