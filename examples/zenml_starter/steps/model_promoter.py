from __future__ import annotations

from mlops_lite import get_step_context, step
from mlops_lite.client import Client
from mlops_lite.logger import get_logger

logger = get_logger(__name__)


@step
def model_promoter(accuracy: float, stage: str = "production") -> bool:
    """Promote this run's model version if it beats the one in ``stage`` (or there is none)."""
    if accuracy < 0.8:
        logger.info(f"Accuracy {accuracy * 100:.2f}% is below 80%: not promoting")
        return False
    current_model = get_step_context().model
    try:
        incumbent = Client().get_model_version(current_model.name, stage)
    except KeyError:
        logger.info(f"No version is in {stage} yet: promoting this one")
        current_model.set_stage(stage, force=True)
        return True
    incumbent_accuracy = incumbent.get_artifact("sklearn_classifier").run_metadata["test_accuracy"]
    if accuracy > float(incumbent_accuracy):
        logger.info(f"{accuracy:.3f} beats {incumbent_accuracy:.3f}: promoting to {stage}")
        current_model.set_stage(stage, force=True)
        return True
    logger.info(f"Keeping version {incumbent.name} in {stage} ({incumbent_accuracy:.3f})")
    return False
