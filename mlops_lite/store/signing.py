"""Signed runs: signing a run commit the way git signs commits, and verifying a teammate's.

Signing is opt-in (``git config mlops-lite.signRuns true``, or
``MLOPS_LITE_SIGN_RUNS=1``; the variable wins): the final run commit is then
made by ``git commit-tree -S``, so git's own signing configuration applies
(``gpg.format ssh`` with ``user.signingKey``, or gpg) and the signature is an
ordinary ``gpgsig`` header that ``git verify-commit`` and every git host
understand. Without signing, the commit git writes is byte-for-byte the one
mlops_lite would have written itself.

Verifying runs ``git verify-commit`` with ``gpg.ssh.allowedSignersFile``
pointing at the project's allowed-signers file, read from the user's own
checkout, never from the run being judged (its code commit could carry any
file). A gpg signature must come from a key the user's keyring trusts fully
(``gpg.minTrustLevel``, unless the user set it).
"""

from __future__ import annotations

import os
import threading
import warnings
from typing import Final

from mlops_lite.core.ids import CommitId
from mlops_lite.errors import StoreError
from mlops_lite.store.git import run_git
from mlops_lite.store.interface import Store
from mlops_lite.store.objects import GitObject, parse_commit

__all__ = [
    "SIGN_CONFIG",
    "SIGN_ENV",
    "has_signature",
    "sign_commit",
    "signing_enabled",
    "verify_signature",
]

SIGN_ENV: Final = "MLOPS_LITE_SIGN_RUNS"
SIGN_CONFIG: Final = "mlops-lite.signRuns"
_TRUE: Final = ("1", "true", "yes", "on")

# (root, commit, allowed-signers stamp) -> verdict: a signature does not change,
# the allowed-signers file may.
_verdicts: dict[tuple[str, str, tuple[int, int] | None], bool] = {}
_verdicts_lock = threading.Lock()


def signing_enabled(store: Store) -> bool:
    """Whether this user asked for their runs to be signed."""
    common_dir = getattr(store, "common_dir", None)  # only a real repository can sign
    if common_dir is None:
        return False
    setting = os.environ.get(SIGN_ENV)
    if setting is not None:
        return setting.strip().lower() in _TRUE
    value = _git_config(common_dir, SIGN_CONFIG)
    return value is not None and value.strip().lower() in _TRUE


def _git_config(common_dir: str, key: str) -> str | None:
    """A value of the repository's, the user's or the system's git config (git's precedence).

    Read through dulwich's config files: ~0.3 ms, where a ``git config``
    process costs ~2 ms on every run.
    """
    from dulwich.config import ConfigFile, StackedConfig

    section, _, name = key.rpartition(".")
    backends = []
    try:
        backends.append(ConfigFile.from_path(os.path.join(common_dir, "config")))
    except (FileNotFoundError, ValueError):
        pass
    stack = StackedConfig([*backends, *StackedConfig.default_backends()])
    try:
        value: bytes = stack.get((section.encode(),), name.encode())
    except KeyError:
        return None
    return value.decode("utf-8", "replace")


def sign_commit(root: str, unsigned: GitObject) -> CommitId | None:
    """The signed twin of ``unsigned`` (same tree, parents, author, date, message), or None.

    Made by ``git commit-tree -S``; the tree and parents must already be in the
    repository. When git cannot sign (no signing key configured, a key that
    needs a passphrase nobody can type), the run is recorded unsigned and a
    warning says why: a run is never lost for want of a signature.
    """
    body = bytes(unsigned.data)
    headers = parse_commit(body)
    message = body.split(b"\n\n", 1)[1] if b"\n\n" in body else b""
    env = {
        **_identity_env("AUTHOR", headers["author"][0]),
        **_identity_env("COMMITTER", headers["committer"][0]),
    }
    parents = [arg for parent in headers.get("parent", []) for arg in ("-p", parent.decode())]
    try:
        signed = run_git(
            root, "commit-tree", "-S", headers["tree"][0].decode(), *parents, env=env, stdin=message
        )
    except StoreError as error:
        warnings.warn(
            f"this run is recorded unsigned: {error}. Signing runs ({SIGN_CONFIG} or {SIGN_ENV}) "
            "needs git's commit signing set up: `git config gpg.format ssh` and "
            "`git config user.signingKey ~/.ssh/id_ed25519` (or a gpg key); or turn it off with "
            f"`git config {SIGN_CONFIG} false`",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return CommitId(signed.strip())


def _identity_env(role: str, line: bytes) -> dict[str, str]:
    """``GIT_<ROLE>_NAME/EMAIL/DATE`` from a ``Name <email> seconds +hhmm`` header."""
    identity, _, when = line.decode("utf-8", "replace").rpartition("> ")
    name, _, email = identity.partition(" <")
    return {
        f"GIT_{role}_NAME": name,
        f"GIT_{role}_EMAIL": email,
        f"GIT_{role}_DATE": f"@{when}",
    }


def has_signature(commit_body: bytes) -> bool:
    """Whether a commit carries a signature header at all (no process started)."""
    headers = parse_commit(commit_body)
    return "gpgsig" in headers or "gpgsig-sha256" in headers


def verify_signature(root: str, commit_id: str, allowed_signers: str) -> bool:
    """Whether ``git verify-commit`` accepts the commit's signature.

    ssh signatures are checked against ``allowed_signers`` only (a path in the
    user's checkout; absent means no ssh key is trusted). Verdicts are kept
    for the process, keyed by the allowed-signers file's state.
    """
    try:
        stat = os.stat(allowed_signers)
        stamp: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        stamp = None
    key = (root, commit_id, stamp)
    with _verdicts_lock:
        known = _verdicts.get(key)
    if known is not None:
        return known
    # An absent file must not fall back to the user's global allowedSignersFile:
    # trust comes from the project's list, which the team reviews.
    signers = allowed_signers if stamp is not None else os.devnull
    settings = ["-c", f"gpg.ssh.allowedSignersFile={os.path.abspath(signers)}"]
    if _git_config_cli(root, "gpg.minTrustLevel") is None:
        settings += ["-c", "gpg.minTrustLevel=fully"]
    try:
        run_git(root, *settings, "verify-commit", "--", commit_id)
        verdict = True
    except StoreError:
        verdict = False
    with _verdicts_lock:
        _verdicts[key] = verdict
    return verdict


def _git_config_cli(root: str, key: str) -> str | None:
    try:
        return run_git(root, "config", "--get", key).strip() or None
    except StoreError:
        return None
