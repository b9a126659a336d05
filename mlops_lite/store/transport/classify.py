"""Turning git's stderr and dulwich's exceptions into the public `RemoteError` classes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from mlops_lite.errors import (
    AuthenticationError,
    RemoteError,
    RemoteRejectedError,
    RemoteUnreachableError,
)
from mlops_lite.store.transport.result import Direction, TransferResult

__all__ = ["EXIT_AUTHENTICATION", "EXIT_REJECTED", "EXIT_UNREACHABLE", "rejected_error"]

# Exit codes of the `mlops-lite` command, set as `exit_code` on the errors raised here.
EXIT_REJECTED = 3
EXIT_UNREACHABLE = 4
EXIT_AUTHENTICATION = 5

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
    if any("shallow" in why for why in result.rejected.values()):
        # A run's first parent is its code commit, whose history a shallow clone lacks.
        advice = (
            "this clone is shallow, and the remote refuses commits whose history it cannot "
            "check; run `git fetch --unshallow` (or `git fetch --deepen=N` until the run's "
            "code commit connects to the remote's history), then push again"
        )
    else:
        advice = (
            f"run `mlops-lite pull {result.remote}` to fetch their side, then compare "
            "(`git log <ref>`) and keep yours under a new name if both must stay"
        )
    error = RemoteRejectedError(
        f"push to {result.remote!r} rejected {len(result.rejected)} ref(s), nothing was forced: "
        f"{names}; {advice}"
    )
    error.exit_code = EXIT_REJECTED  # type: ignore[attr-defined]
    error.result = result  # type: ignore[attr-defined]
    return error


@contextmanager
def _dulwich_errors(remote: str, direction: Direction) -> Iterator[None]:
    """Turn dulwich's exceptions into the public `RemoteError` classes."""
    from dulwich.client import HTTPProxyUnauthorized, HTTPUnauthorized
    from dulwich.errors import (
        ChecksumMismatch,
        FileFormatException,
        GitProtocolError,
        HangupException,
        NotGitRepository,
        ObjectFormatException,
    )

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
    except (FileFormatException, ObjectFormatException, ChecksumMismatch) as error:
        # A remote whose refs or objects are malformed (or crafted): refused as a whole.
        verb = "push to" if direction == "push" else "pull from"
        raise RemoteError(
            f"{verb} {remote!r} refused: the remote holds invalid git data "
            f"({type(error).__name__}: {str(error)[:200]}); nothing was changed here"
        ) from error
