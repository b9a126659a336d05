"""Stateless transformers the preprocessing pipeline is built from (scikit-learn's protocol)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin


class _Stateless(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Nothing to learn: fitting is a no-op, and the transformer counts as fitted."""

    def fit(self, *args: Any, **kwargs: Any) -> _Stateless:
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return True


class DropMissing(_Stateless):
    """Drops rows with missing values."""

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame.dropna()


class DropColumns(_Stateless):
    """Drops the named columns."""

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame.drop(columns=self.columns)


class AsFrame(_Stateless):
    """Turns an array back into a frame with the given columns (scalers return arrays)."""

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns

    def transform(self, values: Any) -> pd.DataFrame:
        return pd.DataFrame(values, columns=list(self.columns))
