"""A keyring backend for tests: passwords from the JSON file ``MLOPS_LITE_TEST_KEYRING`` names.

Selected with ``PYTHON_KEYRING_BACKEND=tests.integration.fake_keyring.FileKeyring``,
so the real ``keyring`` package (and its lookup) is exercised without an OS keyring.
"""

from __future__ import annotations

import json
import os

from keyring.backend import KeyringBackend


class FileKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> str | None:
        with open(os.environ["MLOPS_LITE_TEST_KEYRING"], encoding="utf-8") as source:
            value = json.load(source).get(f"{service}/{username}")
        return value if isinstance(value, str) else None

    def set_password(self, service: str, username: str, password: str) -> None:
        raise NotImplementedError("the test keyring is read-only")

    def delete_password(self, service: str, username: str) -> None:
        raise NotImplementedError("the test keyring is read-only")
