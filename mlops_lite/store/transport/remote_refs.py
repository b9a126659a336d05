"""The values some refs have on a remote right now (``git ls-remote``, or dulwich's ref listing).

A pull that finds a registry ref diverged has already fetched the remote's
objects (git and dulwich both fetch before refusing to move a ref) but reports
no value for it; merging needs that value.
"""

from __future__ import annotations

from typing import Any

from mlops_lite.store.git import run_git_streaming
from mlops_lite.store.refs import is_sha
from mlops_lite.store.transport.classify import _classify, _dulwich_errors
from mlops_lite.store.transport.dulwich_client import _dulwich_session
from mlops_lite.store.transport.result import Implementation

__all__ = ["remote_ref_values"]


def remote_ref_values(
    start_dir: str, remote: str, names: list[str], *, implementation: Implementation
) -> dict[str, str]:
    """``{ref: sha}`` on ``remote`` for those of ``names`` that exist there."""
    if not names:
        return {}
    if implementation == "git":
        completed = run_git_streaming(start_dir, ["ls-remote", remote, *names])
        if completed.code != 0:
            raise _classify(remote, "pull", completed.stderr)
        found = {}
        for line in completed.stdout.splitlines():
            sha, _, name = line.partition("\t")
            if name in names and is_sha(sha):
                found[name] = sha
        return found
    with _dulwich_session(start_dir, remote, "pull", False) as (_, client, path, _report):
        with _dulwich_errors(remote, "pull"):
            dulwich_client: Any = client  # its get_refs is typed per transport
            refs = dulwich_client.get_refs(path.encode() if isinstance(path, str) else path)
    listed = getattr(refs, "refs", refs)
    wanted = {name.encode() for name in names}
    return {
        name.decode(): sha.decode()
        for name, sha in listed.items()
        if name in wanted and sha is not None and is_sha(sha.decode())
    }
