from __future__ import annotations

from typing import Annotated

import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import SGDClassifier

from mlops_lite import ArtifactConfig, step
from mlops_lite.logger import get_logger

logger = get_logger(__name__)


@step
def model_trainer(
    dataset_trn: pd.DataFrame, model_type: str = "sgd", target: str = "target"
) -> Annotated[ClassifierMixin, ArtifactConfig(name="sklearn_classifier", is_model_artifact=True)]:
    """Train the chosen kind of classifier on the training data."""
    if model_type == "sgd":
        model: ClassifierMixin = SGDClassifier(random_state=42)
    elif model_type == "rf":
        model = RandomForestClassifier(n_estimators=50, random_state=42)
    else:
        raise ValueError(f"unknown model_type {model_type!r}: use 'sgd' or 'rf'")
    logger.info(f"Training {model}")
    model.fit(dataset_trn.drop(columns=[target]), dataset_trn[target])
    return model
