"""Everything git: objects, packs, refs, artifacts, the run layout, code pins, the local index.

The only package that imports dulwich. Its exports load on first use: a
command that reads one module of the store (the index, the refs) does not
import the object writer, the artifact reader and the maintenance code too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_lite.core.exports import load_export

if TYPE_CHECKING:
    from mlops_lite.store.interface import Store
    from mlops_lite.store.memory import MemoryStore
    from mlops_lite.store.repository import GitStore, find_project_root

__all__ = ["GitStore", "MemoryStore", "Store", "find_project_root"]

_EXPORTS = {
    "GitStore": "mlops_lite.store.repository",
    "MemoryStore": "mlops_lite.store.memory",
    "Store": "mlops_lite.store.interface",
    "find_project_root": "mlops_lite.store.repository",
}


def __getattr__(name: str) -> Any:
    return load_export(globals(), _EXPORTS, name)
