"""Save and load of a 100 MB artifact through each artifact store, beside a plain copy there.

    python benchmarks/bench_artifact_store.py [--repeat 3] [--mb 100] [--chunks 1000]

For each store (a ``file://`` folder; ``sftp://`` through an sshd started here on
127.0.0.1 when /usr/sbin/sshd exists; ``s3://`` through moto's S3 server on
127.0.0.1 when ``moto_server`` is installed):

- save: the artifact written as a run writes it (chunks aside, pointer in git)
  plus the upload ``push`` does; load: read back with an empty cache, every
  chunk fetched from the store and checked against its SHA-256;
- baseline: the same bytes copied to the same place as one object, with the
  same client and transfer calls (``write_object`` / ``read_objects``).

Every save is of new random bytes: identical chunks would be uploaded only once.

Then ``gc --blobs`` (``--chunks``, default 1,000) on a file:// store where half
the chunks are used by a pointer in git and half are not: the whole
collection as ``gc --blobs --dry-run`` runs it (remote read, reachability
walk, listing, decisions), beside listing the store with fsspec directly, and
the deletion of the unused half.

Figures are medians over the repetitions; the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import make_repo, median_time, scratch_dir


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listened on 127.0.0.1:{port}")


@contextmanager
def _process(command: list[str]) -> Iterator[None]:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def sftp_store() -> Iterator[tuple[str, dict[str, str]] | None]:
    if not os.path.exists("/usr/sbin/sshd") or shutil.which("ssh-keygen") is None:
        yield None
        return
    keys = Path(scratch_dir("mlops-bench-sshd-"))
    for name in ("host", "user"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / name)], check=True
        )
    port = _free_port()
    user = getpass.getuser()
    (keys / "config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {keys / 'host'}\n"
        f"PidFile {keys / 'pid'}\nAuthorizedKeysFile {keys / 'user.pub'}\nStrictModes no\n"
        f"PasswordAuthentication no\nUsePAM no\nAllowUsers {user}\n"
        "Subsystem sftp internal-sftp\nLogLevel ERROR\n"
    )
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    with _process(["/usr/sbin/sshd", "-D", "-e", "-f", str(keys / "config")]):
        _wait(port)
        folder = scratch_dir("mlops-bench-sftp-")
        yield f"sftp://{user}@127.0.0.1:{port}{folder}", {"key_filename": str(keys / "user")}


@contextmanager
def s3_store() -> Iterator[tuple[str, dict[str, str]] | None]:
    beside = Path(sys.executable).parent / "moto_server"
    command = str(beside) if beside.exists() else shutil.which("moto_server")
    if command is None:
        yield None
        return
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=endpoint,
    )  # fmt: skip
    with _process([command, "-H", "127.0.0.1", "-p", str(port)]):
        _wait(port)
        import fsspec

        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        fsspec.filesystem("s3").mkdir(bucket)
        yield f"s3://{bucket}/team", {}


def bench_store(
    name: str, url: str, options: dict[str, str], payloads: list[bytes], repeat: int
) -> None:
    import fsspec.core

    from mlops_lite.store import GitStore
    from mlops_lite.store.artifacts import build_artifact
    from mlops_lite.store.blobstore import (
        ArtifactStoreConfig,
        ChunkStore,
        read_objects,
        write_object,
    )

    root = make_repo()
    config = ArtifactStoreConfig(url, threshold=1024 * 1024, options=options)
    filesystem, base = fsspec.core.url_to_fs(url, **options)
    filesystem.makedirs(base, exist_ok=True)
    artifact: list[str] = []
    fresh = iter(payloads)
    payload = payloads[0]

    def fresh_chunks() -> ChunkStore:
        # A new cache each time: a load must fetch every chunk from the store.
        os.environ["MLOPS_LITE_CACHE_DIR"] = scratch_dir("mlops-bench-cache-")
        return ChunkStore(config, os.path.join(root, ".git", "mlops-lite-blobs"))

    def save() -> None:
        chunks = fresh_chunks()
        with GitStore(root) as store:
            tree, objects = build_artifact(
                next(fresh),
                materializer="builtin.bytes",
                materializer_version=1,
                type_name="builtins.bytes",
                uses_pickle=False,
                chunk_store=chunks,
            )
            store.write_objects(objects)
        chunks.upload_pending()
        artifact[:] = [tree.id]

    def load() -> None:
        with GitStore(root) as store:
            store.__dict__["chunk_store"] = fresh_chunks()  # a cached_property, replaced
            _, value = store.read_artifact(artifact[0])
        assert len(value) == len(payload)

    target = f"{base}/plain-copy"

    def plain_save() -> None:
        write_object(filesystem, target, next(fresh))

    def plain_load() -> None:
        assert len(read_objects(filesystem, [target])[target]) == len(payload)

    saved = median_time(save, repeat)
    loaded = median_time(load, repeat)
    fresh = iter(payloads)
    copied = median_time(plain_save, repeat)
    read = median_time(plain_load, repeat)
    mb = len(payload) / 1e6
    print(
        f"{name:6s} save {saved:6.2f} s  load {loaded:6.2f} s   |  plain copy there: "
        f"write {copied:6.2f} s  read {read:6.2f} s   ({mb:.0f} MB)"
    )


def bench_blob_gc(count: int, repeat: int) -> None:
    import fsspec.core

    from mlops_lite.operations.retention import gc
    from mlops_lite.store import GitStore
    from mlops_lite.store.artifacts import build_artifact
    from mlops_lite.store.blobstore import ArtifactStoreConfig, ChunkStore, write_object

    root = make_repo()
    folder = scratch_dir("mlops-bench-gc-store-")
    url = f"file://{folder}"
    Path(root, "pyproject.toml").write_text(
        f'[tool.mlops-lite]\nartifact_store = "{url}"\nartifact_store_threshold = "1 KiB"\n'
    )
    origin = scratch_dir("mlops-bench-gc-origin-")
    subprocess.run(["git", "init", "-q", "--bare", origin], check=True)
    subprocess.run(["git", "remote", "add", "origin", origin], cwd=root, check=True)
    os.environ["MLOPS_LITE_CACHE_DIR"] = scratch_dir("mlops-bench-cache-")
    config = ArtifactStoreConfig(url, threshold=1024)
    chunks = ChunkStore(config, os.path.join(root, ".git", "mlops-lite-blobs"))
    # Half the chunks behind pointers in git (one small artifact each, a ref and a pack per 100),
    # half with no pointer at all.
    rng = random.Random(0)
    with GitStore(root) as store:
        for batch in range(count // 200):
            trees, written = [], []
            for _ in range(100):
                tree, objects = build_artifact(
                    rng.randbytes(4096), materializer="builtin.bytes", materializer_version=1,
                    type_name="builtins.bytes", uses_pickle=False, chunk_store=chunks,
                )  # fmt: skip
                written += objects
                trees.append(tree.id)
            store.write_objects(written)  # one pack per 100 artifacts, as a run writes one
            listing = "".join(f"040000 tree {t}\t{i:05d}\n" for i, t in enumerate(trees))
            holder = subprocess.run(
                ["git", "mktree"], cwd=root, input=listing, capture_output=True, text=True,
                check=True,
            ).stdout.strip()  # fmt: skip
            subprocess.run(
                ["git", "update-ref", f"refs/mlops/bench/{batch}", holder], cwd=root, check=True
            )
    chunks.upload_pending()
    filesystem, base = fsspec.core.url_to_fs(url)
    for _ in range(count - count // 200 * 100):
        data = rng.randbytes(4096)
        digest = hashlib.sha256(data).hexdigest()
        write_object(filesystem, f"{base}/chunks/{digest[:2]}/{digest}", data)

    def collect(dry_run: bool) -> Any:
        return gc(blobs=True, blob_grace=0, dry_run=dry_run, path=root).chunks

    found = collect(True)
    assert found.stored == count and found.deleted == count - count // 200 * 100, found
    dry = median_time(lambda: collect(True), repeat)
    listed = median_time(lambda: fsspec.core.url_to_fs(url)[0].find(base, detail=True), repeat)
    began = time.perf_counter()
    done = collect(False)
    deleting = time.perf_counter() - began
    print(
        f"gc --blobs, file://, {count} chunks: dry run {dry:6.3f} s, deleting "
        f"{done.deleted} {deleting:6.3f} s   |  fsspec find of the store: {listed:6.3f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--chunks", type=int, default=1000, help="chunks for the gc figure")
    parser.add_argument("--gc-only", action="store_true", help="only the gc figure")
    args = parser.parse_args()
    bench_blob_gc(args.chunks, args.repeat)
    if args.gc_only:
        return
    payloads = [random.Random(seed).randbytes(args.mb * 1024 * 1024) for seed in range(args.repeat)]
    folder = scratch_dir("mlops-bench-file-store-")
    bench_store("file", f"file://{folder}", {}, payloads, args.repeat)
    with sftp_store() as sftp:
        if sftp is None:
            print("sftp   skipped: /usr/sbin/sshd or ssh-keygen not installed")
        else:
            bench_store("sftp", *sftp, payloads, args.repeat)
    with s3_store() as s3:
        if s3 is None:
            print("s3     skipped: moto_server not installed (pip install -e '.[test]')")
        else:
            bench_store("s3", *s3, payloads, args.repeat)


if __name__ == "__main__":
    main()
