"""Everything git: objects, packs, refs, artifacts, the run layout, code pins, the local index.

The only package that imports dulwich.
"""

from mlops_lite.store.interface import Store
from mlops_lite.store.memory import MemoryStore
from mlops_lite.store.repository import GitStore, find_project_root

__all__ = ["GitStore", "MemoryStore", "Store", "find_project_root"]
