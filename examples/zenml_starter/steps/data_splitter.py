from __future__ import annotations

from typing import Annotated

import pandas as pd
from sklearn.model_selection import train_test_split

from mlops_lite import step


@step
def data_splitter(
    dataset: pd.DataFrame, test_size: float = 0.2
) -> tuple[Annotated[pd.DataFrame, "raw_dataset_trn"], Annotated[pd.DataFrame, "raw_dataset_tst"]]:
    """A shuffled train/test split."""
    train, test = train_test_split(dataset, test_size=test_size, random_state=42, shuffle=True)
    return pd.DataFrame(train, columns=dataset.columns), pd.DataFrame(test, columns=dataset.columns)
