"""Running the git command: one environment policy for every git process mlops_lite starts.

The policy:

- Variables that would point git at another repository, index or object
  directory (set by a surrounding hook, rebase or IDE) are removed: every
  command acts on the repository it is given, and nothing else.
- No prompt ever waits for input that no one will type: ``GIT_TERMINAL_PROMPT=0``
  unless the command is a transfer the user started from a terminal.
- ``GIT_OPTIONAL_LOCKS=0``: ``git status`` otherwise refreshes the user's index.
- Internal commands never run the user's hooks (``core.hooksPath`` points at an
  empty place); transfers (``push``/``fetch``) keep them, as ``git push`` would.

Identity (``GIT_AUTHOR_*``), ssh and config variables pass through unchanged.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Generator, Iterator, Mapping, Sequence
from typing import IO, Final

from mlops_lite.errors import StoreError

__all__ = [
    "GitResult",
    "StartedGit",
    "cat_objects",
    "cat_objects_streamed",
    "git_available",
    "git_env",
    "git_lines",
    "resolve_commit",
    "run_git",
    "run_git_streaming",
]

# Variables that redirect git to another repository, index or object store.
_REDIRECTING: Final = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_QUARANTINE_PATH",
)
_NO_HOOKS: Final = ("-c", f"core.hooksPath={os.devnull}")


def git_available() -> bool:
    """Whether the ``git`` command is on PATH."""
    return shutil.which("git") is not None


def git_env(extra: Mapping[str, str] | None = None, *, interactive: bool = False) -> dict[str, str]:
    """The environment of a git process under the policy above, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if key not in _REDIRECTING}
    if not (interactive and _stdin_is_terminal()):
        env["GIT_TERMINAL_PROMPT"] = "0"
    env["GIT_OPTIONAL_LOCKS"] = "0"
    env.update(extra or {})
    return env


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except ValueError:  # closed
        return False


def _command(args: Sequence[str], hooks: bool) -> list[str]:
    if not git_available():
        raise StoreError("mlops_lite needs the git command here and it is not on PATH: install git")
    return ["git", *(() if hooks else _NO_HOOKS), *args]


def run_git(
    root: str,
    *args: str,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
) -> str:
    """``git <args>`` in ``root`` (hooks off); its stdout, or a StoreError with git's message.

    ``env`` holds variables added to the policy's environment (a temporary index).
    """
    completed = subprocess.run(
        _command(args, hooks=False),
        cwd=root,
        env=git_env(env),
        input=stdin,
        capture_output=True,
        check=False,
    )
    if completed.returncode != 0:
        message = completed.stderr.decode(errors="replace").strip()
        raise StoreError(f"git {' '.join(args[:2])} failed in {root}: {message}")
    return completed.stdout.decode("utf-8", "replace")


def git_lines(root: str, *args: str, stdin: bytes = b"") -> Iterator[str]:
    """The lines ``git <args>`` prints in ``root`` (hooks off), as it prints them.

    For output too large to hold at once (``rev-list --objects`` of a whole
    repository); a StoreError with git's message if it fails.
    """
    import tempfile  # with what it imports, 3 ms of every command's start; this one is rare

    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            _command(args, hooks=False), cwd=root, env=git_env(),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors,
        )  # fmt: skip
        assert process.stdin is not None and process.stdout is not None
        feeder = threading.Thread(target=_feed, args=(process.stdin, stdin), daemon=True)
        feeder.start()
        try:
            for line in process.stdout:
                yield line.decode("utf-8", "replace").rstrip("\n")
        finally:
            process.stdout.close()
            code = process.wait()
            feeder.join()
        if code != 0:
            errors.seek(0)
            message = errors.read().decode(errors="replace").strip()
            raise StoreError(f"git {' '.join(args[:2])} failed in {root}: {message}")


class GitResult:
    """What a streamed git command returned: its exit code, stdout and stderr."""

    __slots__ = ("code", "stderr", "stdout")

    def __init__(self, code: int, stdout: str, stderr: str) -> None:
        self.code = code
        self.stdout = stdout
        self.stderr = stderr


# How long a command left unfinished may keep its output coming (``StartedGit``).
_ABANDONED_WAIT: Final = 1.0


def run_git_streaming(
    root: str,
    args: Sequence[str],
    *,
    show_stderr: bool = False,
    hide: re.Pattern[str] | None = None,
    stdin: bytes | None = None,
) -> GitResult:
    """A transfer (``push``/``fetch``): hooks on, stderr captured and echoed live when asked.

    ``hide`` drops matching lines from the echo (but not from the captured text);
    ``stdin`` is written to the command's input (``git fetch --stdin`` refspecs).
    """
    with StartedGit(root, args, show_stderr=show_stderr, hide=hide, stdin=stdin) as started:
        return started.result()


class StartedGit:
    """``run_git_streaming``'s command, started now and waited for by ``result()``.

    What a caller does meanwhile overlaps with git's round trip to a remote
    (``push`` tidies while ``ls-remote`` is under way). Leaving the ``with``
    block without asking for the result stops the command.
    """

    def __init__(
        self,
        root: str,
        args: Sequence[str],
        *,
        show_stderr: bool = False,
        hide: re.Pattern[str] | None = None,
        stdin: bytes | None = None,
    ) -> None:
        self._process = subprocess.Popen(
            _command(args, hooks=True), cwd=root, env=git_env(interactive=True),
            stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert self._process.stdout is not None and self._process.stderr is not None
        self._stdout: list[bytes] = []
        self._stderr: list[bytes] = []
        self._threads = [
            threading.Thread(
                target=_drain,
                args=(self._process.stderr, self._stderr, show_stderr, hide),
                daemon=True,
            ),
            threading.Thread(
                target=_drain, args=(self._process.stdout, self._stdout, False, None), daemon=True
            ),
        ]
        if stdin is not None:
            assert self._process.stdin is not None
            self._threads.append(
                threading.Thread(target=_feed, args=(self._process.stdin, stdin), daemon=True)
            )
        for thread in self._threads:
            thread.start()

    def result(self) -> GitResult:
        """Wait for the command; its exit code and output."""
        code = self._process.wait()
        for thread in self._threads:
            thread.join()
        return GitResult(
            code,
            b"".join(self._stdout).decode("utf-8", "replace"),
            b"".join(self._stderr).decode("utf-8", "replace"),
        )

    def __enter__(self) -> StartedGit:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        # A child git started (ssh, an alias's shell) may hold the pipes open a while
        # longer: its output is not wanted, and the daemon readers go with the process.
        for thread in self._threads:
            thread.join(timeout=_ABANDONED_WAIT)


def _feed(stream: IO[bytes], data: bytes) -> None:
    try:
        stream.write(data)
    except BrokenPipeError:
        pass
    finally:
        try:
            stream.close()
        except BrokenPipeError:
            pass


def _drain(
    stream: IO[bytes], chunks: list[bytes], echo: bool, hide: re.Pattern[str] | None
) -> None:
    pending = ""
    while chunk := os.read(stream.fileno(), 65536):
        chunks.append(chunk)
        if echo:
            # Whole lines only: progress redraws end in \r.
            pending += chunk.decode("utf-8", "replace")
            *complete, pending = re.split(r"(?<=[\r\n])", pending)
            shown = [line for line in complete if hide is None or not hide.match(line)]
            sys.stderr.write("".join(shown))
            sys.stderr.flush()
    if echo and pending:
        sys.stderr.write(pending)


def resolve_commit(root: str, revision: str) -> str | None:
    """The full sha of the commit ``revision`` names (sha, prefix, branch), or None."""
    arguments = ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}"]
    completed = subprocess.run(
        _command(arguments, hooks=False),
        cwd=root, env=git_env(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    sha = completed.stdout.strip()
    return sha if completed.returncode == 0 and sha else None


def cat_objects(root: str, object_ids: list[str]) -> dict[str, tuple[str, bytes]]:
    """``{id: (type name, body)}`` through one ``git cat-file --batch``; missing ones left out.

    One process streams what would otherwise be one dulwich look-up each (~60 µs):
    it is how a fresh index reads the records of thousands of runs at once.
    """
    return {
        object_id: (kind, body) for object_id, kind, body in cat_objects_streamed(root, object_ids)
    }


def cat_objects_streamed(
    root: str, object_ids: list[str]
) -> Generator[tuple[str, str, bytes], None, None]:
    """``(id, type name, body)`` of the objects present, in the order asked, as git answers.

    A caller that works on each object as it comes lets git read the next ones
    meanwhile, a pipe's worth ahead. Closing the iterator early ends git.
    """
    process = subprocess.Popen(
        _command(["cat-file", "--batch"], hooks=False), cwd=root, env=git_env(),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert process.stdin is not None and process.stdout is not None
    _widen_pipe(process.stdout)
    requests = process.stdin

    def send() -> None:
        # Written from a thread: git answers while we are still asking, and
        # both pipes would fill up if we asked for everything first.
        try:
            requests.write(b"".join(object_id.encode() + b"\n" for object_id in object_ids))
        except BrokenPipeError:
            pass
        finally:
            try:
                requests.close()
            except BrokenPipeError:
                pass

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    answers = process.stdout
    try:
        for _ in object_ids:
            header = answers.readline().split()
            if not header:
                break  # git stopped answering
            if len(header) != 3 or not header[2].isdigit():  # "<id> missing" (or ambiguous)
                continue
            body = answers.read(int(header[2]))
            answers.read(1)  # the newline after each object
            yield header[0].decode(), header[1].decode(), body
    finally:
        # Our end closed first: a git still writing (we stopped early) ends on it,
        # and so does the sender, which it no longer reads from.
        answers.close()
        sender.join()
        process.wait()


# What a pipe may hold, where the system lets us choose (Linux, up to its
# pipe-max-size, 1 MiB by default). git cat-file stops at each full pipe: with
# the default 64 KiB, it and its reader take turns on a stream of 85 MB of
# listings (0.2 s) instead of running side by side (0.13 s).
_PIPE_BYTES: Final = 1024 * 1024


def _widen_pipe(stream: IO[bytes]) -> None:
    """Let the pipe behind ``stream`` hold ``_PIPE_BYTES``, where the system allows it."""
    try:
        import fcntl

        fcntl.fcntl(stream.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
    except (ImportError, AttributeError, OSError):
        pass  # not Linux, or a lower limit: the default size works, more slowly
