from __future__ import annotations

import pandas as pd
from sklearn.base import ClassifierMixin

from mlops_lite import log_metadata, step
from mlops_lite.client import Client
from mlops_lite.logger import get_logger

logger = get_logger(__name__)


@step
def model_evaluator(
    model: ClassifierMixin,
    dataset_trn: pd.DataFrame,
    dataset_tst: pd.DataFrame,
    min_train_accuracy: float = 0.0,
    min_test_accuracy: float = 0.0,
    target: str = "target",
) -> float:
    """Score the model on both parts; keep the scores on the classifier's artifact version."""
    train_accuracy = model.score(dataset_trn.drop(columns=[target]), dataset_trn[target])
    test_accuracy = model.score(dataset_tst.drop(columns=[target]), dataset_tst[target])
    logger.info(f"Train accuracy={train_accuracy * 100:.2f}%")
    logger.info(f"Test accuracy={test_accuracy * 100:.2f}%")
    for name, value, minimum in (
        ("Train", train_accuracy, min_train_accuracy),
        ("Test", test_accuracy, min_test_accuracy),
    ):
        if value < minimum:
            logger.warning(f"{name} accuracy {value * 100:.2f}% is below {minimum * 100:.2f}%")
    # The classifier this run's trainer just made is the newest version of its artifact.
    classifier = Client().get_artifact_version("sklearn_classifier")
    log_metadata(
        metadata={"train_accuracy": float(train_accuracy), "test_accuracy": float(test_accuracy)},
        artifact_version_id=classifier.id,
    )
    return float(test_accuracy)
