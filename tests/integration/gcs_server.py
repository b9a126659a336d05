"""A real Google Cloud Storage API on 127.0.0.1 for the artifact store tests.

``gcp-storage-emulator`` (a test dependency) serves the JSON API gcsfs speaks;
a user's run reaches it through the same client code (fsspec and gcsfs),
configured as gcsfs documents: ``STORAGE_EMULATOR_HOST`` in the environment.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.integration.remotes import start_on_free_port, stop


@dataclass
class GcsServer:
    endpoint: str

    def environment(self) -> dict[str, str]:
        """What a user sets to reach this server: nothing secret, nothing in pyproject.toml."""
        return {
            "STORAGE_EMULATOR_HOST": self.endpoint,
            # gcsfs probes a bucket's type over gRPC first, which the emulator does not
            # serve: each probe would wait a minute before gcsfs falls back to JSON.
            "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
        }

    def new_bucket(self) -> str:
        name = f"team-{uuid.uuid4().hex[:12]}"
        request = urllib.request.Request(
            f"{self.endpoint}/storage/v1/b?project=test",
            data=f'{{"name": "{name}"}}'.encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30):
            return name

    def keys(self, bucket: str) -> list[str]:
        """Every object name in ``bucket``, read with the JSON API."""
        url = f"{self.endpoint}/storage/v1/b/{bucket}/o?maxResults=10000"
        with urllib.request.urlopen(url, timeout=30) as response:
            listing = json.load(response)
        return sorted(item["name"] for item in listing.get("items", []))

    def overwrite(self, bucket: str, key: str, data: bytes) -> None:
        """Replace an object's bytes with a plain upload, as a careless teammate's tool would."""
        request = urllib.request.Request(
            f"{self.endpoint}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={quote(key)}",
            data=data,
            headers={"Content-Type": "application/octet-stream"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30):
            pass


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsServer]:
    """``gcp-storage-emulator`` in memory on a free port."""
    beside = Path(sys.executable).parent / "gcp-storage-emulator"
    command = [str(beside)] if beside.exists() else [shutil.which("gcp-storage-emulator") or ""]
    if not command[0]:
        pytest.skip("gcp-storage-emulator is not installed: pip install -e '.[test]'")
    pytest.importorskip("gcsfs")
    log = tmp_path_factory.mktemp("gcs") / "gcs.log"
    process, port = start_on_free_port(
        lambda port: subprocess.Popen(
            [*command, "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"],
            stdout=subprocess.DEVNULL,
            stderr=log.open("wb"),
        ),
        "gcp-storage-emulator",
    )
    yield GcsServer(f"http://127.0.0.1:{port}")
    stop(process)
