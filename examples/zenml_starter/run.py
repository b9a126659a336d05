"""The starter project: feature engineering, training with promotion, batch inference.

Written the way ZenML's starter template is, with ``mlops_lite`` in the import
lines. Run it from inside a git repository (this checkout will do)::

    python run.py --feature-pipeline      # dataset_trn / dataset_tst versions
    python run.py --training-pipeline     # model versions "sgd" and "rf"; the best is promoted
    python run.py --inference-pipeline    # predictions from the "production" version
    mlops-lite model versions breast_cancer_classifier

It needs scikit-learn, pandas, pyarrow and PyYAML (``pip install 'mlops-lite[examples]'``).
"""

from __future__ import annotations

import argparse
import os

import yaml
from pipelines import feature_engineering, inference, training

from mlops_lite.client import Client
from mlops_lite.logger import get_logger

logger = get_logger(__name__)

CONFIGS = os.path.join(os.path.dirname(os.path.realpath(__file__)), "configs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feature-pipeline", action="store_true")
    parser.add_argument("--training-pipeline", action="store_true")
    parser.add_argument("--inference-pipeline", action="store_true")
    parser.add_argument("--train-dataset-name", default="dataset_trn")
    parser.add_argument("--train-dataset-version-name", default=None)
    parser.add_argument("--test-dataset-name", default="dataset_tst")
    parser.add_argument("--test-dataset-version-name", default=None)
    parser.add_argument("--no-cache", action="store_true", help="run every step again")
    args = parser.parse_args()
    client = Client()
    cache = {"enable_cache": False} if args.no_cache else {}

    if args.feature_pipeline:
        feature_engineering.with_options(
            config_path=os.path.join(CONFIGS, "feature_engineering.yaml"), **cache
        )()
        train = client.get_artifact_version(args.train_dataset_name)
        test = client.get_artifact_version(args.test_dataset_name)
        logger.info(
            f"Feature engineering made {train.name} version {train.version} and "
            f"{test.name} version {test.version}"
        )

    if args.training_pipeline:
        datasets = {}
        if args.train_dataset_version_name or args.test_dataset_version_name:
            train = client.get_artifact_version(
                args.train_dataset_name, args.train_dataset_version_name
            )
            test = client.get_artifact_version(
                args.test_dataset_name, args.test_dataset_version_name
            )
            datasets = {"train_dataset_id": train.id, "test_dataset_id": test.id}
        for config in ("training_sgd.yaml", "training_rf.yaml"):
            training.with_options(config_path=os.path.join(CONFIGS, config), **cache)(**datasets)
            logger.info(f"Training with {config} finished")

    if args.inference_pipeline:
        config_path = os.path.join(CONFIGS, "inference.yaml")
        with open(config_path) as f:
            model_config = yaml.safe_load(f)["model"]
        version = client.get_model_version(model_config["name"], model_config["version"])
        # The preprocessing remembers how the training data was made.
        preprocess = version.get_artifact("preprocess_pipeline")
        inference.with_options(config_path=config_path, enable_cache=False)(
            random_state=preprocess.run_metadata["random_state"],
            target=preprocess.run_metadata["target"],
        )
        logger.info(f"Inference with model version {version.name} finished")


if __name__ == "__main__":
    main()
