"""The pieces of the trust decision: what unpickles, local provenance, the order of trust."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, ClassVar

import pytest

from mlops_lite import secret
from mlops_lite.core.secrets import contains_secret, register_secret, scrub_text, scrub_value
from mlops_lite.errors import UntrustedPickleError
from mlops_lite.execution.task import MaterializedOutput
from mlops_lite.materializers import (
    CloudpickleMaterializer,
    Materializer,
    MsgpackMaterializer,
    loading_unpickles,
    register_materializer,
)
from mlops_lite.store import provenance
from mlops_lite.store.memory import MemoryStore
from mlops_lite.store.provenance import PROVENANCE_FILE, recorded_here, remember_recorded
from mlops_lite.store.trust import TRUST_ENV, run_trust

SHA = "a" * 40
OTHER = "b" * 40


class _JoblibLike(Materializer):
    name: ClassVar[str] = "tests.joblib_like"
    version: ClassVar[int] = 0
    uses_pickle: ClassVar[bool] = True


def test_whether_loading_unpickles_is_asked_of_the_installed_materializer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlops_lite import materializers

    monkeypatch.setattr(materializers, "_registry", materializers._Registry())
    assert loading_unpickles(MsgpackMaterializer.name) is False
    assert loading_unpickles(CloudpickleMaterializer.name) is True
    assert loading_unpickles("nobody.installed.this") is True  # cannot be vouched for
    register_materializer(_JoblibLike, override=True)
    assert loading_unpickles("tests.joblib_like") is True


def test_a_worker_refuses_a_pickle_its_driver_did_not_clear() -> None:
    payload = pickle.dumps({"w": 3})
    sent = MaterializedOutput(
        payload, CloudpickleMaterializer.name, CloudpickleMaterializer.version, "dict", False
    )
    with pytest.raises(UntrustedPickleError, match="not trusted here"):
        sent.load()
    sent.may_unpickle = True
    assert sent.load() == {"w": 3}
    # Bytes that do not unpickle need no clearance: the fast path checks nothing.
    plain = MaterializedOutput(
        MsgpackMaterializer().save([1, 2]), MsgpackMaterializer.name, 1, "list", False
    )
    assert plain.load() == [1, 2]


def test_provenance_is_a_local_file_of_commit_ids_and_ignores_anything_else(
    tmp_path: Path,
) -> None:
    class DiskStore(MemoryStore):
        state_dir = str(tmp_path / "mlops-lite")

    store = DiskStore()
    assert not recorded_here(store, SHA)
    remember_recorded(store, SHA)
    assert recorded_here(store, SHA) and not recorded_here(store, OTHER)
    with (tmp_path / "mlops-lite" / PROVENANCE_FILE).open("a") as file:
        file.write(f"{OTHER[:20]}\nnot a commit\n{'c' * 64}\n")  # a torn line, junk, sha-256
    assert not recorded_here(store, OTHER)
    assert recorded_here(store, "c" * 64)
    (tmp_path / "mlops-lite" / PROVENANCE_FILE).unlink()
    provenance._cache.clear()  # the next process
    assert not recorded_here(store, SHA)  # lost: nothing is trusted


def test_trust_comes_from_the_call_then_the_environment_then_provenance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = MemoryStore()
    assert not run_trust(store, SHA)
    assert run_trust(store, SHA, explicit=True)
    monkeypatch.setenv(TRUST_ENV, "1")
    assert run_trust(store, SHA).reason == f"{TRUST_ENV}=1"
    assert not run_trust(store, SHA, explicit=False)
    monkeypatch.setenv(TRUST_ENV, "alice@example.com")
    refused = run_trust(store, SHA)
    assert not refused and "not e-mails" in refused.reason
    monkeypatch.delenv(TRUST_ENV)
    remember_recorded(store, SHA)
    assert run_trust(store, SHA).reason == "recorded by this clone"
    assert not run_trust(MemoryStore(), SHA)  # another clone's provenance is its own


def test_scrubbing_replaces_every_form_of_a_registered_secret() -> None:
    assert scrub_text("nothing registered") == "nothing registered"
    register_secret("line-one-secret\nline-two-secret")
    register_secret("abc")  # too short to scrub without destroying logs
    text = "whole: line-one-secret\nline-two-secret; repr: 'line-one-secret\\nline-two-secret'"
    assert scrub_text(text) == "whole: <redacted>; repr: '<redacted>'"
    assert scrub_text("a line: line-two-secret, abc") == "a line: <redacted>, abc"
    value: dict[Any, Any] = {
        "k": ["line-one-secret", ("line-two-secret", 3)],
        "line-one-secret": b"x line-one-secret",
    }
    assert scrub_value(value) == {
        "k": ["<redacted>", ("<redacted>", 3)],
        "<redacted>": b"x <redacted>",
    }
    assert contains_secret({"nested": ["line-two-secret"]})
    assert not contains_secret({"nested": ["harmless", 3]})


def test_secret_registers_what_it_returns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNIT_TOKEN", "unit-token-77aa")
    assert secret("UNIT_TOKEN") == "unit-token-77aa"
    assert scrub_text("token unit-token-77aa") == "token <redacted>"
