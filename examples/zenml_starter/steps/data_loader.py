from __future__ import annotations

from typing import Annotated

import pandas as pd
from sklearn.datasets import load_breast_cancer

from mlops_lite import step
from mlops_lite.logger import get_logger

logger = get_logger(__name__)

# The share of the data kept back as "new" data for batch inference.
INFERENCE_SHARE = 0.05


@step
def data_loader(
    random_state: int, is_inference: bool = False, target: str = "target"
) -> Annotated[pd.DataFrame, "dataset"]:
    """The breast cancer data: the training part, or (is_inference) a held-back sample."""
    frame = load_breast_cancer(as_frame=True).frame
    held_back = frame.sample(int(len(frame) * INFERENCE_SHARE), random_state=random_state)
    if is_inference:
        data = held_back.drop(columns=target)
    else:
        data = frame.drop(held_back.index)
    data = data.reset_index(drop=True)
    logger.info(f"Loaded {len(data)} rows")
    return data
