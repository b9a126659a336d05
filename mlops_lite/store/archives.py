"""Archives: old runs held by a few refs, so that refs stay few and every run stays reachable.

A repository with 100,000 run refs slows every git command that looks at refs
(a branch push downloads a 9 MB ref advertisement, ``git log --decorate`` and
``git fetch`` read every ref). So only recent runs keep a ref of their own;
older ones are folded, a batch at a time, into an archive::

    refs/mlops/archive/<sha>    an archive commit, named by its own id

    parents       the run commits it holds (sorted by their refs): git reaches every
                  one of them, so pushing the archive pushes them and ``git gc`` keeps them
    tree          runs.msgpack  the listing: each run's ref and sha, and what the run
                  index lists of it (status, times, author, parameters, metadata, metric
                  columns, cache keys), so a fresh clone lists the runs without reading
                  one record per run

Archives are write-once and content-addressed: the commit is built from the
listing alone (a fixed author and the newest run's time), so two clones that
fold the same runs make the same archive under the same name, and a name never
has two values.

Archive refs are themselves kept few: archives are folded into *roots*, under
the same ``refs/mlops/archive/<sha>`` naming::

    parents       the archives (or roots) it holds, sorted
    tree          archives.msgpack  the same list of archive commits

dated like its newest archive (never "now": git walks a tip newer than the
user's commits, and with it every run below), so roots of roots keep a
repository of any size at a handful of archive refs. A root is read with
bounds (``ArchiveTree``): how deep, and how many archive commits under one
ref; whatever exceeds them, or cannot be read, is skipped with the reason.
A version of mlops-lite from before roots reads a root as an archive without
``runs.msgpack``: it warns that the archive cannot be read and skips it, so
it does not list the runs under a root (upgrade to list them).

A listing comes from teammates like everything else: it is
decoded with bounds on every column (its value and cache columns when first
read: a fresh clone lists runs without them), its runs must be the commit's parents, and
what it says is only what listings show (a cache hit is checked against the
run's own record before it is reused). Runs keep their names (the index lists
an archived run under ``refs/mlops/runs/<pipeline>/<run>`` as before), their
shas and everything that works with a sha (``rerun``, ``git show``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import msgpack

from mlops_lite.core.status import RUN_STATUSES
from mlops_lite.errors import MlopsLiteError, RecordError
from mlops_lite.store.layout import are_run_refs
from mlops_lite.store.objects import (
    BLOB,
    COMMIT,
    MODE_BLOB,
    TREE,
    GitObject,
    Identity,
    ObjectReader,
    blob,
    commit,
    parse_commit,
    parse_tree,
    tree,
)
from mlops_lite.store.refs import Refs, is_sha

__all__ = [
    "ARCHIVE_BATCH",
    "ARCHIVE_PREFIX",
    "ROOT_FANOUT",
    "Archive",
    "ArchiveTree",
    "Listing",
    "Root",
    "archive_height",
    "archive_ref",
    "archive_time",
    "archive_tips",
    "archive_tree",
    "archives_kept",
    "build_archive",
    "build_root",
    "count_held_runs",
    "parse_archive_ref",
    "read_archive",
    "read_node",
    "sorted_listing",
]

ARCHIVE_PREFIX: Final = "refs/mlops/archive/"
# Runs per archive: 100 run commits as parents (4.8 KB), a small commit for git to
# parse as a tip; roots keep the number of archive refs down (``folding.py``).
ARCHIVE_BATCH: Final = 100
# Archives per root: once this many archive refs have the same height, they are
# folded into one root, so there are fewer than this many per height.
ROOT_FANOUT: Final = 8
_LISTING: Final = "runs.msgpack"
_ROOT_LISTING: Final = "archives.msgpack"
_SCHEMA: Final = 1
_KIND: Final = "archive"
_ROOT_KIND: Final = "archive-root"
# Who archives are made by: a fixed identity keeps them identical in every clone.
_ARCHIVER: Final = Identity("mlops-lite", "mlops-lite@localhost")
# Bounds on what a listing from a teammate may hold.
_MAX_RUNS: Final = 100_000
_MAX_LISTING_BYTES: Final = 256 * 1024 * 1024
_MAX_TEXT: Final = 1024
_MAX_BLOB: Final = 1024 * 1024
# Bounds on what one archive ref may hold (a teammate's crafted root): roots of
# ROOT_FANOUT archives reach 8**16 archives long before this depth.
_MAX_CHILDREN: Final = 10_000
_MAX_DEPTH: Final = 16
_MAX_NODES: Final = 50_000


def archive_ref(sha: str) -> str:
    """The ref of the archive commit ``sha``."""
    return ARCHIVE_PREFIX + sha


def parse_archive_ref(ref: str) -> str | None:
    """The archive commit an archive ref must point at (its own name), else None."""
    sha = ref.removeprefix(ARCHIVE_PREFIX)
    return sha if ref.startswith(ARCHIVE_PREFIX) and is_sha(sha) else None


def archive_tips(refs: Refs) -> list[str]:
    """The archive commits the archive refs name, sorted (a ref must name its own commit)."""
    listed = refs.list(ARCHIVE_PREFIX)
    return sorted(sha for ref, sha in listed.items() if parse_archive_ref(ref) == sha)


@dataclass
class Listing:
    """The runs an archive holds, column by column: the run index's own rows.

    ``values_*`` and ``cache_*`` refer to runs by their position in ``refs``.
    A decoded listing reads and checks those columns the first time one is
    used (``complete``): a fresh clone lists 100,000 archived runs without
    them, and they are two thirds of every listing's cells.
    """

    refs: list[str] = field(default_factory=list)
    shas: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    start_times: list[float | None] = field(default_factory=list)
    end_times: list[float | None] = field(default_factory=list)
    code_commits: list[str | None] = field(default_factory=list)
    authors: list[str | None] = field(default_factory=list)
    author_names: list[str | None] = field(default_factory=list)
    hosts: list[str | None] = field(default_factory=list)
    parameters: list[bytes] = field(default_factory=list)
    metadata: list[bytes] = field(default_factory=list)
    value_runs: list[int] = field(default_factory=list)
    value_names: list[str] = field(default_factory=list)
    value_data: list[bytes] = field(default_factory=list)
    value_numbers: list[float | None] = field(default_factory=list)
    cache_runs: list[int] = field(default_factory=list)
    cache_keys: list[str] = field(default_factory=list)
    cache_steps: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.refs)

    def encode(self) -> bytes:
        """The ``runs.msgpack`` blob: the schema envelope around the columns."""
        columns = {name: getattr(self, name) for name in _COLUMNS}
        packed: bytes = msgpack.packb(
            {"schema": _SCHEMA, "kind": _KIND, "data": columns}, use_bin_type=True
        )
        return packed

    @classmethod
    def decode(cls, data: bytes, *, where: str) -> Listing:
        """A listing read back, its run columns checked; ``RecordError`` for anything else.

        Its value and cache columns are read and checked when first used
        (``complete``), and raise ``RecordError`` then if they are not valid.
        """
        columns, deferred = _listing_columns(data, where=where)
        # Built without its deferred columns: reading one calls ``__getattr__``.
        listing = cls.__new__(cls)
        for name in _RUN_COLUMNS:
            column = columns.get(name)
            if type(column) is not list or not _COLUMNS[name](column):
                raise RecordError(f"{where} has an invalid listing column {name!r}")
            setattr(listing, name, column)
        listing._check_runs(where)
        # Kept outside the fields: equality, repr and encode see the columns only.
        listing.__dict__["_deferred"] = _Deferred(data, deferred, where)
        return listing

    def complete(self) -> Listing:
        """The listing, its value and cache columns read and checked (``RecordError``)."""
        deferred: _Deferred | None = self.__dict__.get("_deferred")
        if deferred is None:
            return self
        columns = {}
        for name in _DEFERRED_COLUMNS:
            span = deferred.spans.get(name)
            column = (
                None
                if span is None
                else _unpack(deferred.data[span[0] : span[1]], where=deferred.where)
            )
            if type(column) is not list or not _COLUMNS[name](column):
                raise RecordError(f"{deferred.where} has an invalid listing column {name!r}")
            columns[name] = column
        for group in (_VALUE_COLUMNS, _CACHE_COLUMNS):
            if len({len(columns[name]) for name in group}) != 1:
                raise RecordError(f"{deferred.where} has a listing whose columns differ in length")
        count = len(self.refs)
        for positions in (columns["value_runs"], columns["cache_runs"]):
            if positions and not 0 <= min(positions) <= max(positions) < count:
                raise RecordError(f"{deferred.where} has a listing row for a run it does not hold")
        self.__dict__.update(columns)
        self.__dict__.pop("_deferred", None)  # two threads may complete it at once
        return self

    if not TYPE_CHECKING:  # mypy keeps checking attribute names

        def __getattr__(self, name: str) -> Any:
            # Only called for an attribute not set: a decoded listing's deferred column.
            if name in _DEFERRED_COLUMNS and "_deferred" in self.__dict__:
                return getattr(self.complete(), name)
            raise AttributeError(name)

    def _check_runs(self, where: str) -> None:
        count = len(self.refs)
        if count > _MAX_RUNS:
            raise RecordError(f"{where} lists {count} runs: refused")
        for name in _RUN_COLUMNS:
            if len(getattr(self, name)) != count:
                raise RecordError(f"{where} has a listing whose columns differ in length")
        if len(set(self.refs)) != count or not are_run_refs(self.refs):
            raise RecordError(f"{where} lists a run ref twice, or one that is not a run's")
        if not _all_shas(self.shas) or not set(self.statuses) <= _STATUSES:
            raise RecordError(f"{where} lists an invalid sha or status")


@dataclass(frozen=True, slots=True)
class _Deferred:
    """A decoded listing's value and cache columns, still packed: ``{name: (start, end)}``."""

    data: bytes
    spans: dict[str, tuple[int, int]]
    where: str


# Each check is a pass of C loops (``map``, ``set``, ``max``): a fresh clone checks
# millions of cells, and a Python loop per cell cost a second at 100,000 runs.


def _texts(column: list[Any]) -> bool:
    return set(map(type, column)) <= _STR and max(map(len, column), default=0) <= _MAX_TEXT


def _optional_texts(column: list[Any]) -> bool:
    # filter(None, ...) leaves out None and "" (whose length is within bounds anyway)
    return (
        set(map(type, column)) <= _OPTIONAL_STR
        and max(map(len, filter(None, column)), default=0) <= _MAX_TEXT
    )


def _numbers(column: list[Any]) -> bool:
    return set(map(type, column)) <= _OPTIONAL_NUMBER


def _blobs(column: list[Any]) -> bool:
    return set(map(type, column)) <= _BYTES and max(map(len, column), default=0) <= _MAX_BLOB


def _all_shas(column: list[str]) -> bool:
    """Whether every item is a sha (``refs.is_sha``), in C passes: checked texts only."""
    if not set(map(len, column)) <= _SHA_LENGTH:
        return False
    try:
        joined = "".join(column).encode("ascii")
    except UnicodeEncodeError:
        return False
    return not joined.translate(None, _HEX_DIGITS)  # nothing left once hex digits are


def _integers(column: list[Any]) -> bool:
    return set(map(type, column)) <= _INT


_STR: Final[frozenset[type]] = frozenset({str})
_OPTIONAL_STR: Final[frozenset[type]] = frozenset({str, type(None)})
_OPTIONAL_NUMBER: Final[frozenset[type]] = frozenset({float, int, type(None)})
_BYTES: Final[frozenset[type]] = frozenset({bytes})
_INT: Final[frozenset[type]] = frozenset({int})
_SHA_LENGTH: Final = frozenset({40})
_HEX_DIGITS: Final = b"0123456789abcdef"


_COLUMNS: Final = {
    "refs": _texts,
    "shas": _texts,
    "statuses": _texts,
    "start_times": _numbers,
    "end_times": _numbers,
    "code_commits": _optional_texts,
    "authors": _optional_texts,
    "author_names": _optional_texts,
    "hosts": _optional_texts,
    "parameters": _blobs,
    "metadata": _blobs,
    "value_runs": _integers,
    "value_names": _texts,
    "value_data": _blobs,
    "value_numbers": _numbers,
    "cache_runs": _integers,
    "cache_keys": _texts,
    "cache_steps": _texts,
}
_RUN_COLUMNS: Final = tuple(list(_COLUMNS)[:11])
_VALUE_COLUMNS: Final = ("value_runs", "value_names", "value_data", "value_numbers")
_CACHE_COLUMNS: Final = ("cache_runs", "cache_keys", "cache_steps")
_DEFERRED_COLUMNS: Final = (*_VALUE_COLUMNS, *_CACHE_COLUMNS)
_STATUSES: Final = frozenset(RUN_STATUSES)


@dataclass(frozen=True, slots=True)
class Archive:
    """An archive commit, read and checked: the runs it holds."""

    sha: str
    listing: Listing
    timestamp: int = 0  # its committer time: the newest run's start


@dataclass(frozen=True, slots=True)
class Root:
    """A root, read and checked: the archive commits (archives or roots) it holds."""

    sha: str
    children: tuple[str, ...]
    timestamp: int  # its committer time: the newest child's


def build_archive(listing: Listing) -> tuple[GitObject, list[GitObject]]:
    """The archive commit holding the runs of ``listing`` (sorted by ref), and its new objects.

    Everything in the commit comes from the listing, so the same runs give the
    same commit in every clone.
    """
    if not listing.refs:
        raise ValueError("an archive holds at least one run")
    listing_blob = blob(listing.encode())
    listing_tree = tree({_LISTING: (MODE_BLOB, listing_blob.id)})
    times = [time for time in listing.start_times if time is not None]
    archive = commit(
        tree_id=listing_tree.id,
        parents=listing.shas,
        author=_ARCHIVER,
        timestamp=max(times, default=0),
        tz_offset_minutes=0,
        message=f"mlops-lite archive of {len(listing)} runs\n",
    )
    return archive, [listing_blob, listing_tree, archive]


def build_root(children: dict[str, int]) -> tuple[GitObject, list[GitObject]]:
    """The root holding the archive commits ``{sha: committer time}``, and its new objects.

    Dated like its newest child, never now, so the same children make the same
    root in every clone, and git's walks do not reach below it early.
    """
    if not children:
        raise ValueError("a root holds at least one archive")
    shas = sorted(children)
    envelope = {"schema": _SCHEMA, "kind": _ROOT_KIND, "data": {"archives": shas}}
    listing_blob = blob(msgpack.packb(envelope, use_bin_type=True))
    listing_tree = tree({_ROOT_LISTING: (MODE_BLOB, listing_blob.id)})
    root = commit(
        tree_id=listing_tree.id,
        parents=shas,
        author=_ARCHIVER,
        timestamp=max(children.values()),
        tz_offset_minutes=0,
        message=f"mlops-lite archive of {len(shas)} archives\n",
    )
    return root, [listing_blob, listing_tree, root]


# Archives read lately, by commit id: a pull reads each new one twice (to decide
# whether to take it, then to index it). An id names one content, so the answer
# is the same from any repository; callers never modify an archive's listing.
_RECENT: dict[str, Archive | Root] = {}
_RECENT_MAX: Final = 8
# Every archive read inside ``archives_kept`` (None outside it).
_KEPT: dict[str, Archive | Root] | None = None


@contextmanager
def archives_kept() -> Iterator[None]:
    """Keep every archive commit read within this scope, not only the last few.

    A pull into a fresh clone reads a thousand archives to decide which to take,
    then the index reads the same ones: kept, each is read and checked once.
    """
    global _KEPT
    if _KEPT is not None:
        yield  # an outer scope keeps them already
        return
    _KEPT = {}
    try:
        yield
    finally:
        _KEPT = None


def _already_read(sha: str) -> Archive | Root | None:
    found = _RECENT.get(sha)
    if found is None and _KEPT is not None:
        found = _KEPT.get(sha)
    return found


def read_archive(read_object: ObjectReader, sha: str) -> Archive:
    """Read and check an archive commit; ``RecordError`` when it is not one.

    Its listing must hold exactly the runs its parents are: nothing it names is
    out of git's reach, and nothing it reaches goes unlisted.
    """
    node = read_node(read_object, sha)
    if isinstance(node, Root):
        raise RecordError(
            f"archive {sha[:12]} is a root (an archive of archives), not an archive of runs"
        )
    return node


def read_node(read_object: ObjectReader, sha: str) -> Archive | Root:
    """Read and check an archive commit of either kind; ``RecordError`` when it is neither."""
    known = _already_read(sha)
    if known is not None:
        return known
    node = _read_node(read_object, sha)
    if len(_RECENT) >= _RECENT_MAX:
        del _RECENT[next(iter(_RECENT))]
    _RECENT[sha] = node
    if _KEPT is not None:
        _KEPT[sha] = node
    return node


def _read_node(read_object: ObjectReader, sha: str) -> Archive | Root:
    where = f"archive {sha[:12]}"
    headers = parse_commit(read_object(sha, COMMIT))
    trees = headers.get("tree")
    if not trees:
        raise RecordError(f"{where} is not a commit with a tree")
    entries = parse_tree(read_object(trees[0].decode("ascii", "replace"), TREE))
    parents = [parent.decode("ascii", "replace") for parent in headers.get("parent", [])]
    timestamp = _committer_time(headers)
    root_entry = entries.get(_ROOT_LISTING)
    if root_entry is not None and root_entry[0] == MODE_BLOB and _LISTING not in entries:
        children = _decode_root(read_object(root_entry[1], BLOB), where=where)
        if sorted(parents) != children:
            raise RecordError(f"{where} lists other archives than it holds")
        return Root(sha, tuple(children), timestamp)
    entry = entries.get(_LISTING)
    if entry is None or entry[0] != MODE_BLOB:
        raise RecordError(f"{where} has no {_LISTING}")
    listing = Listing.decode(read_object(entry[1], BLOB), where=where)
    if sorted(parents) != sorted(listing.shas):
        raise RecordError(f"{where} lists other runs than it holds")
    return Archive(sha, listing, timestamp)


def _envelope_data(data: bytes, *, kind: str, what: str, limit: int, where: str) -> dict[Any, Any]:
    """The ``data`` map of a listing blob's schema envelope, its size, kind and schema checked."""
    if len(data) > limit:
        raise RecordError(f"{where} has a {what} of {len(data)} bytes: refused")
    try:
        envelope = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except (ValueError, TypeError, msgpack.exceptions.UnpackException):
        raise RecordError(f"{where} has a damaged {what}") from None
    if not isinstance(envelope, dict) or envelope.get("kind") != kind:
        raise RecordError(f"{where} has no {'archive listing' if kind == _KIND else what}")
    if envelope.get("schema") != _SCHEMA:
        raise RecordError(
            f"{where} has a {what} of schema {envelope.get('schema')!r}, this mlops_lite "
            f"reads {_SCHEMA}: upgrade mlops-lite to read it"
        )
    content = envelope.get("data")
    if not isinstance(content, dict):
        raise RecordError(f"{where} has a damaged {what}")
    return content


def _listing_columns(
    data: bytes, *, where: str
) -> tuple[dict[Any, Any], dict[str, tuple[int, int]]]:
    """The columns of a ``runs.msgpack`` envelope, but the deferred ones: where those lie in it.

    Read as a stream, with the envelope's size, kind and schema checked as
    ``_envelope_data`` checks them: the value and cache columns are skipped
    (walked as msgpack, never built), so decoding a listing costs a quarter of
    unpacking it whole. Keys repeated in a map count once, the last, as a
    whole unpack would have them.
    """
    if len(data) > _MAX_LISTING_BYTES:
        raise RecordError(f"{where} has a listing of {len(data)} bytes: refused")
    if not _map_at(data, 0):
        raise RecordError(f"{where} has no archive listing")
    envelope: dict[Any, Any] = {}
    content: tuple[dict[Any, Any], dict[str, tuple[int, int]]] | None = None
    stream = msgpack.Unpacker(raw=False, strict_map_key=True, max_buffer_size=len(data))
    stream.feed(data)
    try:
        for _ in range(stream.read_map_header()):
            key = _map_key(stream.unpack())
            if key != "data" or not _map_at(data, stream.tell()):
                envelope[key] = stream.unpack()
                content = None if key == "data" else content
                continue
            columns: dict[Any, Any] = {}
            spans: dict[str, tuple[int, int]] = {}
            for _ in range(stream.read_map_header()):
                name = _map_key(stream.unpack())
                if name in _DEFERRED_COLUMNS:
                    start = stream.tell()
                    stream.skip()
                    spans[name] = (start, stream.tell())
                else:
                    columns[name] = stream.unpack()
            content = (columns, spans)
        if stream.tell() != len(data):
            raise ValueError("extra data after the listing")
    except (ValueError, TypeError, msgpack.exceptions.UnpackException):
        raise RecordError(f"{where} has a damaged listing") from None
    if envelope.get("kind") != _KIND:
        raise RecordError(f"{where} has no archive listing")
    if envelope.get("schema") != _SCHEMA:
        raise RecordError(
            f"{where} has a listing of schema {envelope.get('schema')!r}, this mlops_lite "
            f"reads {_SCHEMA}: upgrade mlops-lite to read it"
        )
    if content is None:
        raise RecordError(f"{where} has a damaged listing")
    return content


def _map_at(data: bytes, position: int) -> bool:
    """Whether a msgpack map starts at ``position`` (fixmap, map 16, map 32)."""
    return position < len(data) and (
        0x80 <= data[position] <= 0x8F or data[position] in b"\xde\xdf"
    )


def _map_key(key: Any) -> Any:
    """A map key as ``strict_map_key`` allows it (str or bytes); ValueError for any other."""
    if type(key) is not str and type(key) is not bytes:
        raise ValueError("a map key that is not a string")
    return key


def _unpack(data: bytes, *, where: str) -> Any:
    """One msgpack value, as a whole listing is unpacked; ``RecordError`` when damaged."""
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True)
    except (ValueError, TypeError, msgpack.exceptions.UnpackException):
        raise RecordError(f"{where} has a damaged listing") from None


def _decode_root(data: bytes, *, where: str) -> list[str]:
    """The sorted archive commits a root's ``archives.msgpack`` names, every one checked."""
    children = _envelope_data(
        data, kind=_ROOT_KIND, what="root listing", limit=_MAX_CHILDREN * 50, where=where
    ).get("archives")
    if (
        type(children) is not list
        or not 0 < len(children) <= _MAX_CHILDREN
        or not all(type(child) is str and is_sha(child) for child in children)
        or len(set(children)) != len(children)
    ):
        raise RecordError(f"{where} has an invalid root listing")
    return sorted(children)


def archive_height(sha: str, children: Mapping[str, list[str]], heights: dict[str, int]) -> int:
    """0 for an archive of runs, one more than its highest archive for a root.

    ``children``: what each root holds; ``heights`` remembers the answers.
    """
    height = heights.get(sha)
    if height is None:
        below = children.get(sha, ())
        height = 1 + max(archive_height(c, children, heights) for c in below) if below else 0
        heights[sha] = height
    return height


def archive_time(read_object: ObjectReader, sha: str) -> int:
    """The committer time of archive commit ``sha`` (its newest run's), reading the commit only."""
    return _committer_time(parse_commit(read_object(sha, COMMIT)))


def _committer_time(headers: dict[str, list[bytes]]) -> int:
    """The committer time of a parsed commit (0 when it has none that parses)."""
    try:
        return int(headers["committer"][0].rsplit(b" ", 2)[1])
    except (KeyError, IndexError, ValueError):
        return 0


@dataclass
class ArchiveTree:
    """What an archive ref holds, read down to its archives of runs (``archive_tree``).

    ``roots`` and ``archives`` are the commits read, ``skipped`` those that could
    not be read or were beyond the bounds (with why), ``known`` those left unread
    because the caller knows them already.
    """

    roots: dict[str, Root] = field(default_factory=dict)
    archives: dict[str, Archive] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    known: set[str] = field(default_factory=set)

    def runs(self) -> Iterable[tuple[str, str]]:
        """Every ``(run ref, sha)`` the archives read hold."""
        for archive in self.archives.values():
            yield from zip(archive.listing.refs, archive.listing.shas, strict=True)


def archive_tree(
    read_object: ObjectReader,
    tip: str,
    *,
    known: Collection[str] = (),
    prefetch: Callable[[list[str]], ObjectReader] | None = None,
) -> ArchiveTree:
    """Read what the archive commit ``tip`` holds, level by level, within bounds.

    Commits in ``known`` are not read (nor what is below them). ``prefetch``
    reads a level's commits in bulk and returns a reader serving them. Never
    raises for what a teammate wrote: an archive that cannot be read, one
    deeper than 16 levels, or past 50,000 archive commits under one ref is
    in ``skipped``.
    """
    found = ArchiveTree()
    level = [tip]
    seen = {tip}
    for depth in range(_MAX_DEPTH + 2):
        wanted = [sha for sha in level if sha not in known]
        found.known.update(sha for sha in level if sha in known)
        if not wanted:
            break
        if depth > _MAX_DEPTH:
            for sha in wanted:
                found.skipped[sha] = f"deeper than {_MAX_DEPTH} levels of archives: not read"
            break
        unread = [sha for sha in wanted if _already_read(sha) is None]
        reader = prefetch(unread) if prefetch is not None and unread else read_object
        below = []
        for sha in wanted:
            try:
                node = read_node(reader, sha)
            except MlopsLiteError as error:
                found.skipped[sha] = str(error)
                continue
            if isinstance(node, Archive):
                found.archives[sha] = node
                continue
            found.roots[sha] = node
            for child in node.children:
                if child in seen:
                    continue
                if len(seen) >= _MAX_NODES:
                    found.skipped[child] = f"past {_MAX_NODES} archives under one ref: not read"
                    continue
                seen.add(child)
                below.append(child)
        level = below
    return found


def count_held_runs(
    read_objects: Callable[[list[str]], Mapping[str, GitObject]], tips: Collection[str]
) -> int:
    """How many runs the archive commits ``tips`` hold, from their commits and trees alone.

    An archive of runs has one parent per run (``read_node`` holds its listing
    to the same), a root one per archive: no listing is read. What a pull that
    leaves the index for later reports. Bounded like ``archive_tree``; what
    cannot be read counts nothing.
    """
    count = 0
    seen = set(tips)
    level = sorted(seen)
    for _ in range(_MAX_DEPTH + 1):
        if not level:
            break
        heads: dict[str, tuple[str, list[str]]] = {}  # commit -> (its tree, its parents)
        for sha, found in read_objects(level).items():
            try:
                headers = parse_commit(bytes(found.data)) if found.type_num == COMMIT else {}
            except RecordError:
                continue
            trees = headers.get("tree")
            if trees:
                parents = [p.decode("ascii", "replace") for p in headers.get("parent", [])]
                heads[sha] = (trees[0].decode("ascii", "replace"), parents)
        trees_read = read_objects(sorted({tree_sha for tree_sha, _ in heads.values()}))
        below: list[str] = []
        for tree_sha, parents in heads.values():
            listed = trees_read.get(tree_sha)
            try:
                entries = (
                    parse_tree(bytes(listed.data)) if listed and listed.type_num == TREE else {}
                )
            except RecordError:
                continue
            if _LISTING in entries:
                count += len(parents)
            elif _ROOT_LISTING in entries:
                for parent in parents:
                    if parent not in seen and len(seen) < _MAX_NODES:
                        seen.add(parent)
                        below.append(parent)
        level = below
    return count


def sorted_listing(listing: Listing) -> Listing:
    """The listing with its runs in ref order (and its rows in run order): one form per content."""
    order = sorted(range(len(listing)), key=lambda position: listing.refs[position])
    moved = {old: new for new, old in enumerate(order)}
    result = Listing()
    for name in _RUN_COLUMNS:
        column = getattr(listing, name)
        setattr(result, name, [column[position] for position in order])
    values = sorted(
        zip(
            (moved[run] for run in listing.value_runs),
            listing.value_names,
            listing.value_data,
            listing.value_numbers,
            strict=True,
        ),
        key=lambda row: (row[0], row[1]),
    )
    cache = sorted(
        zip(
            (moved[run] for run in listing.cache_runs),
            listing.cache_keys,
            listing.cache_steps,
            strict=True,
        ),
        key=lambda row: (row[0], row[2], row[1]),
    )
    _set_columns(result, _VALUE_COLUMNS, values)
    _set_columns(result, _CACHE_COLUMNS, cache)
    return result


def _set_columns(listing: Listing, names: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> None:
    columns: list[list[Any]] = [[] for _ in names]
    for row in rows:
        for column, item in zip(columns, row, strict=True):
            column.append(item)
    for name, column in zip(names, columns, strict=True):
        setattr(listing, name, column)
