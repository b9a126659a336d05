"""A real S3-compatible server on 127.0.0.1 for the artifact store tests: moto's standalone server.

It is reached through the same client code a user's run uses (fsspec and s3fs),
configured the way a user would: AWS_* variables in the environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.remotes import start_on_free_port, stop


@dataclass
class S3Server:
    endpoint: str

    def environment(self) -> dict[str, str]:
        """What a user sets to reach this server: credentials never go in pyproject.toml."""
        return {
            "AWS_ACCESS_KEY_ID": "test-key-id",
            "AWS_SECRET_ACCESS_KEY": "test-secret-key",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint,
        }

    def new_bucket(self) -> str:
        name = f"team-{uuid.uuid4().hex[:12]}"
        self.request("PUT", f"/{name}")
        return name

    def request(self, method: str, path: str, body: bytes | None = None) -> bytes:
        request = urllib.request.Request(f"{self.endpoint}{path}", data=body, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return bytes(response.read())

    def overwrite(self, bucket: str, key: str, data: bytes) -> None:
        """Replace an object's bytes, as a careless teammate's tool would (signed, through s3fs)."""
        program = (
            "import sys, fsspec; fs = fsspec.filesystem('s3'); "
            "fs.pipe_file(sys.argv[1], sys.stdin.buffer.read())"
        )
        subprocess.run(
            [sys.executable, "-c", program, f"{bucket}/{key}"],
            input=data, check=True, capture_output=True, timeout=60,
            env={**os.environ, **self.environment()},
        )  # fmt: skip

    def keys(self, bucket: str) -> list[str]:
        """Every key in ``bucket`` (a ListObjects answer, read without an XML parser's help)."""
        listing = self.request("GET", f"/{bucket}?list-type=2&max-keys=10000").decode()
        return [part.split("</Key>")[0] for part in listing.split("<Key>")[1:]]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """``moto_server`` (from the ``moto[server]`` test dependency) on a free port."""
    beside = Path(sys.executable).parent / "moto_server"
    command = [str(beside)] if beside.exists() else [shutil.which("moto_server") or ""]
    if not command[0]:
        pytest.skip("moto_server is not installed: pip install -e '.[test]'")
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    process, port = start_on_free_port(
        lambda port: subprocess.Popen(
            [*command, "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=log.open("wb"),
        ),
        "moto_server",
    )
    yield S3Server(f"http://127.0.0.1:{port}")
    stop(process)
