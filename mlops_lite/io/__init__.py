"""File helpers under ZenML's module path (``from mlops_lite.io import fileio``)."""

__all__: list[str] = []
