"""Writing a batch of git objects as one pack file with its v2 index.

A run's objects go into one pack instead of loose files: 1,000 small loose
objects cost 0.6 s to write against 0.07 s as a pack (DESIGN.md, measured).
Payloads that are already zstd-compressed, or large, are stored at zlib level 0:
deflating 100 MB at the default level costs ~2 s, 60x a raw write.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
import zlib
from collections.abc import Iterable

from mlops_lite.store.objects import GitObject
from mlops_lite.store.threads import parallel_map

_SMALL = 64 * 1024


def _entry_header(type_num: int, size: int) -> bytes:
    byte = (type_num << 4) | (size & 0x0F)
    size >>= 4
    out = bytearray()
    while size:
        out.append(byte | 0x80)
        byte = size & 0x7F
        size >>= 7
    out.append(byte)
    return bytes(out)


def _encode_entry(obj: GitObject) -> tuple[bytes, bytes, int]:
    # Large payloads are zstd-compressed or incompressible: zlib level 0 only frames them.
    level = 1 if len(obj.data) < _SMALL else 0
    head = _entry_header(obj.type_num, len(obj.data))
    body = zlib.compress(obj.data, level)
    return head, body, zlib.crc32(body, zlib.crc32(head))


def write_pack(pack_dir: str, objects: Iterable[GitObject]) -> str | None:
    """Write ``objects`` (deduplicated) as one pack + idx; return the pack's name.

    The pack is renamed into place before its index, so readers (which look
    for the index) never see a half-written pack.
    """
    unique: dict[str, GitObject] = {}
    for obj in objects:
        unique.setdefault(obj.id, obj)
    if not unique:
        return None
    os.makedirs(pack_dir, exist_ok=True)
    entries: list[tuple[bytes, int, int]] = []  # (binary sha, offset, crc32)
    checksum = hashlib.sha1(usedforsecurity=False)
    fd, tmp_pack = tempfile.mkstemp(prefix="tmp_pack_", dir=pack_dir)
    try:
        with os.fdopen(fd, "wb") as out:
            header = b"PACK" + struct.pack(">II", 2, len(unique))
            out.write(header)
            checksum.update(header)
            offset = len(header)
            small = [obj for obj in unique.values() if len(obj.data) < _SMALL]
            large = [obj for obj in unique.values() if len(obj.data) >= _SMALL]
            for obj, (head, body, crc) in [
                *zip(small, map(_encode_entry, small), strict=True),
                *zip(large, parallel_map(_encode_entry, large), strict=True),
            ]:
                out.write(head)
                out.write(body)
                checksum.update(head)
                checksum.update(body)
                entries.append((bytes.fromhex(obj.id), offset, crc))
                offset += len(head) + len(body)
            pack_sha = checksum.digest()
            out.write(pack_sha)
        name = "pack-" + pack_sha.hex()
        index = _index_bytes(entries, pack_sha)
        fd_idx, tmp_idx = tempfile.mkstemp(prefix="tmp_idx_", dir=pack_dir)
        with os.fdopen(fd_idx, "wb") as out:
            out.write(index)
        os.chmod(tmp_pack, 0o444)
        os.chmod(tmp_idx, 0o444)
        os.replace(tmp_pack, os.path.join(pack_dir, name + ".pack"))
        os.replace(tmp_idx, os.path.join(pack_dir, name + ".idx"))
    except BaseException:
        for leftover in (tmp_pack, locals().get("tmp_idx")):
            if leftover and os.path.exists(leftover):
                os.unlink(leftover)
        raise
    return name


def _index_bytes(entries: list[tuple[bytes, int, int]], pack_sha: bytes) -> bytes:
    entries.sort()
    fanout = [0] * 256
    for sha, _, _ in entries:
        fanout[sha[0]] += 1
    running = 0
    for i in range(256):
        running += fanout[i]
        fanout[i] = running
    small_offsets: list[int] = []
    large_offsets: list[int] = []
    for _, offset, _ in entries:
        if offset < 0x80000000:
            small_offsets.append(offset)
        else:
            small_offsets.append(0x80000000 | len(large_offsets))
            large_offsets.append(offset)
    parts = [
        b"\xfftOc" + struct.pack(">I", 2),
        struct.pack(">256I", *fanout),
        b"".join(sha for sha, _, _ in entries),
        struct.pack(f">{len(entries)}I", *(crc for _, _, crc in entries)),
        struct.pack(f">{len(entries)}I", *small_offsets),
        struct.pack(f">{len(large_offsets)}Q", *large_offsets),
        pack_sha,
    ]
    body = b"".join(parts)
    return body + hashlib.sha1(body, usedforsecurity=False).digest()
