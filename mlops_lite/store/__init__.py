"""Everything git: objects, packs, refs, artifacts, run layout, code pins, the local index.

The only package that imports dulwich.
"""

from mlops_lite.store.repository import RUNS_PREFIX, GitStore, find_project_root

__all__ = ["RUNS_PREFIX", "GitStore", "find_project_root"]
