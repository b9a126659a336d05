from __future__ import annotations

from typing import Annotated

import pandas as pd
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler
from utils.preprocess import AsFrame, DropColumns, DropMissing

from mlops_lite import log_metadata, step


@step
def data_preprocessor(
    random_state: int,
    dataset_trn: pd.DataFrame,
    dataset_tst: pd.DataFrame,
    drop_na: bool | None = None,
    normalize: bool | None = None,
    drop_columns: list[str] | None = None,
    target: str = "target",
) -> tuple[
    Annotated[pd.DataFrame, "dataset_trn"],
    Annotated[pd.DataFrame, "dataset_tst"],
    Annotated[Pipeline, "preprocess_pipeline"],
]:
    """Fit the preprocessing on the training data; apply it to both parts."""
    preprocess = Pipeline([("passthrough", "passthrough")])
    if drop_na:
        preprocess.steps.append(("drop_na", DropMissing()))
    if drop_columns:
        preprocess.steps.append(("drop_columns", DropColumns(drop_columns)))
    if normalize:
        preprocess.steps.append(("normalize", MinMaxScaler()))
    preprocess.steps.append(("as_frame", AsFrame(list(dataset_trn.columns))))
    dataset_trn = preprocess.fit_transform(dataset_trn)
    dataset_tst = preprocess.transform(dataset_tst)
    # Inference reads these back from the artifact's metadata.
    log_metadata(
        metadata={"random_state": random_state, "target": target},
        artifact_name="preprocess_pipeline",
        infer_artifact=True,
    )
    return dataset_trn, dataset_tst, preprocess
