from __future__ import annotations

from typing import Any

from steps import data_loader, data_preprocessor, data_splitter

from mlops_lite import pipeline


@pipeline
def feature_engineering(
    test_size: float = 0.2,
    drop_na: bool | None = None,
    normalize: bool | None = None,
    drop_columns: list[str] | None = None,
    target: str = "target",
    random_state: int = 17,
) -> Any:
    """Load the data, split it, fit and apply the preprocessing; return both parts."""
    raw_data = data_loader(random_state=random_state, target=target)
    raw_trn, raw_tst = data_splitter(dataset=raw_data, test_size=test_size)
    dataset_trn, dataset_tst, _ = data_preprocessor(
        dataset_trn=raw_trn,
        dataset_tst=raw_tst,
        drop_na=drop_na,
        normalize=normalize,
        drop_columns=drop_columns,
        target=target,
        random_state=random_state,
    )
    return dataset_trn, dataset_tst
