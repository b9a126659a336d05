from __future__ import annotations

from uuid import UUID

from steps import model_evaluator, model_promoter, model_trainer

from mlops_lite import pipeline
from mlops_lite.client import Client
from pipelines.feature_engineering import feature_engineering


@pipeline
def training(
    train_dataset_id: UUID | None = None,
    test_dataset_id: UUID | None = None,
    target: str = "target",
    model_type: str = "sgd",
) -> None:
    """Train a model version on given dataset versions (or fresh ones), score it, promote it."""
    if train_dataset_id is None or test_dataset_id is None:
        # A pipeline called in a pipeline adds its steps to this one.
        dataset_trn, dataset_tst = feature_engineering()
    else:
        client = Client()
        dataset_trn = client.get_artifact_version(name_id_or_prefix=train_dataset_id)
        dataset_tst = client.get_artifact_version(name_id_or_prefix=test_dataset_id)
    model = model_trainer(dataset_trn=dataset_trn, target=target, model_type=model_type)
    accuracy = model_evaluator(
        model=model, dataset_trn=dataset_trn, dataset_tst=dataset_tst, target=target
    )
    model_promoter(accuracy=accuracy)
