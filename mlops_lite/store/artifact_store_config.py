"""``[tool.mlops-lite] artifact_store``: where large artifacts live (``blobstore.py`` moves them).

Read by every command that opens a store, so kept apart from the store itself:
finding that no artifact store is configured imports nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from mlops_lite.core.sizes import parse_size
from mlops_lite.errors import ConfigError
from mlops_lite.store.project_config import PYPROJECT, read_project_config

__all__ = ["DEFAULT_THRESHOLD", "ArtifactStoreConfig", "artifact_store_config"]

DEFAULT_THRESHOLD: Final = 1024 * 1024
# Option names that would put a credential in pyproject.toml, which is committed.
_CREDENTIALS: Final = frozenset(
    {
        "key", "secret", "token", "password", "passphrase", "session_token",
        "aws_access_key_id", "aws_secret_access_key", "aws_session_token",
        "client_secret", "account_key", "sas_token", "credentials",
    }
)  # fmt: skip


@dataclass(frozen=True)
class ArtifactStoreConfig:
    """Where large artifacts live, and from which size."""

    url: str
    threshold: int = DEFAULT_THRESHOLD
    options: Mapping[str, Any] = field(default_factory=dict)


def artifact_store_config(root: str) -> ArtifactStoreConfig | None:
    """The project's artifact store, from ``[tool.mlops-lite]`` of its ``pyproject.toml``."""
    table = read_project_config(root)
    url = table.get("artifact_store")
    where = f"{PYPROJECT}: [tool.mlops-lite]"
    if url is None:
        for key in ("artifact_store_threshold", "artifact_store_options"):
            if key in table:
                raise ConfigError(f"{where}: {key} is set but artifact_store is not")
        return None
    if not isinstance(url, str) or "://" not in url:
        raise ConfigError(
            f"{where}: artifact_store must be a URL such as 's3://bucket/prefix', "
            f"'gs://bucket/prefix', 'sftp://host/path' or 'file:///shared/path', not {url!r}"
        )
    threshold = parse_size(table.get("artifact_store_threshold", DEFAULT_THRESHOLD))
    if threshold is None:
        raise ConfigError(
            f"{where}: artifact_store_threshold must be a size such as '1 MiB' or a number of "
            f"bytes, not {table.get('artifact_store_threshold')!r}"
        )
    options = table.get("artifact_store_options", {})
    if not isinstance(options, dict):
        raise ConfigError(f"{where}: artifact_store_options must be a table")
    secret = sorted(name for name in options if name.lower() in _CREDENTIALS)
    if secret:
        raise ConfigError(
            f"{where}: artifact_store_options holds {', '.join(secret)}: credentials do not "
            f"belong in {PYPROJECT}, which is committed; set them in the environment (e.g. "
            "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) or the storage tool's own config files"
        )
    return ArtifactStoreConfig(url.rstrip("/"), threshold, options)
