"""Train and evaluate a classifier on the iris data set that ships with scikit-learn.

Run it from anywhere inside a git repository:

    python examples/iris_pipeline.py            # first run: every step executes
    python examples/iris_pipeline.py            # second run: every step is a cache hit
    python examples/iris_pipeline.py --c 0.5    # only training and evaluation run again
    python -m mlops_lite runs list              # or `mlops-lite runs list` in an activated venv
"""

from __future__ import annotations

import argparse
import logging
from typing import Annotated, Any

import numpy as np

from mlops_lite import get_step_context, log_metadata, pipeline, step
from mlops_lite.core.command import cli_command

logger = logging.getLogger("iris")


@step
def load_data() -> tuple[Annotated[np.ndarray, "features"], Annotated[np.ndarray, "labels"]]:
    from sklearn.datasets import load_iris

    data = load_iris()
    logger.info("loaded %d samples with %d features", *data.data.shape)
    return data.data, data.target


@step
def split(
    features: np.ndarray, labels: np.ndarray, test_fraction: float = 0.3, seed: int = 0
) -> tuple[
    Annotated[np.ndarray, "x_train"],
    Annotated[np.ndarray, "x_test"],
    Annotated[np.ndarray, "y_train"],
    Annotated[np.ndarray, "y_test"],
]:
    from sklearn.model_selection import train_test_split

    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=test_fraction, random_state=seed, stratify=labels
    )
    print(f"train: {len(x_train)} samples, test: {len(x_test)} samples")
    return x_train, x_test, y_train, y_test


@step
def train(x_train: np.ndarray, y_train: np.ndarray, c: float = 1.0) -> Annotated[Any, "model"]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=500))
    model.fit(x_train, y_train)
    log_metadata({"train_accuracy": float(model.score(x_train, y_train))})
    return model


@step
def evaluate(model: Any, x_test: np.ndarray, y_test: np.ndarray) -> Annotated[dict, "report"]:
    from sklearn.metrics import accuracy_score, f1_score

    predictions = model.predict(x_test)
    report = {
        "accuracy": float(accuracy_score(y_test, predictions)),
        "macro_f1": float(f1_score(y_test, predictions, average="macro")),
        "evaluated_by": get_step_context().step_name,
    }
    log_metadata(report)
    print(f"test accuracy {report['accuracy']:.3f}, macro F1 {report['macro_f1']:.3f}")
    return report


@pipeline
def iris_training(c: float = 1.0, test_fraction: float = 0.3, seed: int = 0) -> None:
    features, labels = load_data()
    x_train, x_test, y_train, y_test = split(
        features, labels, test_fraction=test_fraction, seed=seed
    )
    model = train(x_train, y_train, c=c)
    evaluate(model, x_test, y_test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--c", type=float, default=1.0, help="inverse regularization strength")
    parser.add_argument("--test-fraction", type=float, default=0.3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run = iris_training(c=args.c, test_fraction=args.test_fraction)
    report = run.steps["evaluate"].outputs["report"].load()
    cached = sum(step.cached for step in run.steps.values())
    print(
        f"run {run.name} ({run.sha[:10]}): {run.status}, accuracy {report['accuracy']:.3f}, "
        f"{cached}/{len(run.steps)} steps from cache"
    )
    # `mlops-lite` when it is on PATH for this interpreter, else `<python> -m mlops_lite`.
    print(f"inspect it with: {cli_command()} runs show {run.sha[:10]}")


if __name__ == "__main__":
    main()
