from __future__ import annotations

from typing import Annotated

import pandas as pd
from sklearn.pipeline import Pipeline

from mlops_lite import step


@step
def inference_preprocessor(
    dataset_inf: pd.DataFrame, preprocess_pipeline: Pipeline, target: str
) -> Annotated[pd.DataFrame, "inference_dataset"]:
    """Apply the preprocessing fitted in training to new data."""
    # The fitted pipeline expects the target column; its value does not matter.
    dataset_inf[target] = pd.Series([1] * len(dataset_inf))
    dataset_inf = preprocess_pipeline.transform(dataset_inf)
    return dataset_inf.drop(columns=[target])
