from __future__ import annotations

from typing import Annotated, Any

import pandas as pd

from mlops_lite import step


@step
def inference_predict(model: Any, dataset_inf: pd.DataFrame) -> Annotated[pd.Series, "predictions"]:
    """Predict with the production model."""
    return pd.Series(model.predict(dataset_inf), name="predicted")
