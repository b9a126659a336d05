"""Whose pickles may be unpickled here: decided from facts a teammate cannot forge.

Loading a pickle runs code, so a pickled artifact is loaded (or reused as a
cache hit, or sent to a worker as an input) only when the run it comes from
is trusted here, in this order:

1. per call: ``load(trust_pickle=True)`` (``False`` refuses even your own);
2. per environment: ``MLOPS_LITE_TRUST_PICKLE=1`` trusts every run;
3. local provenance: the run commit was written by this clone (``provenance``);
4. a signature: the run commit is signed (``signing``) by a key listed in the
   project's allowed-signers file, read from your checkout.

Anything else is untrusted, whatever the run says about itself: an author
e-mail is text anyone can type, so it proves nothing (``MLOPS_LITE_TRUST_PICKLE``
no longer accepts e-mails; trusting a teammate means trusting their key).
Whether an artifact needs trust at all is the caller's question, answered
from the materializer the artifact's own ``meta`` names, as installed here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final

from mlops_lite.errors import ConfigError, MlopsLiteError
from mlops_lite.store.interface import Store
from mlops_lite.store.objects import COMMIT
from mlops_lite.store.provenance import recorded_here
from mlops_lite.store.signing import SIGN_CONFIG, has_signature, verify_signature

__all__ = [
    "ALLOWED_SIGNERS_DEFAULT",
    "TRUST_ENV",
    "Trust",
    "allowed_signers_path",
    "run_trust",
    "trust_advice",
]

TRUST_ENV: Final = "MLOPS_LITE_TRUST_PICKLE"
ALLOWED_SIGNERS_DEFAULT: Final = ".mlops-lite/allowed_signers"
_YES: Final = ("1", "true", "yes", "all", "*")


@dataclass(frozen=True, slots=True)
class Trust:
    """Whether a run's pickles may be loaded here, and why (shown to the user)."""

    trusted: bool
    reason: str

    def __bool__(self) -> bool:
        return self.trusted


def run_trust(
    store: Store, commit_id: str, *, explicit: bool | None = None, signatures: bool = True
) -> Trust:
    """Whether pickles from run commit ``commit_id`` may be unpickled in this process.

    ``signatures=False`` asks only what costs no git process (the call, the
    environment, provenance): a "no" then means "not without checking more".
    """
    if explicit is not None:
        return Trust(explicit, f"trust_pickle={explicit}")
    setting = os.environ.get(TRUST_ENV, "").strip()
    if setting.lower() in _YES:
        return Trust(True, f"{TRUST_ENV}={setting}")
    if recorded_here(store, commit_id):
        return Trust(True, "recorded by this clone")
    signers = allowed_signers_path(store.root) if signatures else None
    if signers is not None and _signed_by_allowed_key(store, commit_id, signers):
        return Trust(True, f"signed by a key in {os.path.relpath(signers, store.root)}")
    reason = "not recorded by this clone and not signed by a key you allow"
    if setting and setting.lower() not in ("0", "false", "no"):
        reason += (
            f" ({TRUST_ENV}={setting} is ignored: it takes 1 or 0, not e-mails, since an "
            "e-mail in a run proves nothing)"
        )
    return Trust(False, reason)


def _signed_by_allowed_key(store: Store, commit_id: str, signers: str) -> bool:
    try:
        body = store.read_object(commit_id, COMMIT)  # a blob or tree is not a signed run
    except MlopsLiteError:
        return False
    # Most runs are unsigned: answering that needs no process.
    return has_signature(body) and verify_signature(store.root, commit_id, signers)


def allowed_signers_path(root: str) -> str | None:
    """The project's allowed-signers file in the user's checkout, or None without a checkout.

    ``[tool.mlops-lite] allowed_signers`` in ``pyproject.toml`` names it (relative
    to the project root); the default is ``.mlops-lite/allowed_signers``.
    """
    if not os.path.isdir(root):
        return None  # a store without a work tree (the memory store)
    # Asked only for a pickle from a run that is not yours: tomllib waits till then.
    from mlops_lite.store.project_config import read_project_config

    configured = read_project_config(root).get("allowed_signers", ALLOWED_SIGNERS_DEFAULT)
    if not isinstance(configured, str) or not configured:
        raise ConfigError(
            "pyproject.toml: [tool.mlops-lite] allowed_signers must be a path relative to the "
            f"project root, such as {ALLOWED_SIGNERS_DEFAULT!r}"
        )
    return os.path.join(root, configured)


def trust_advice(root: str) -> str:
    """How to trust a run: what an ``UntrustedPickleError`` tells the user to do."""
    signers = ALLOWED_SIGNERS_DEFAULT
    try:
        path = allowed_signers_path(root)
        if path is not None:
            signers = os.path.relpath(path, root)
    except ConfigError:
        pass
    return (
        f"If you trust it, call load(trust_pickle=True) or set {TRUST_ENV}=1 for this "
        f"environment; to trust a teammate for good, have them sign their runs "
        f"(`git config {SIGN_CONFIG} true` with git commit signing set up) and add their "
        f"public key to {signers} in your checkout (git's allowed-signers format)"
    )
