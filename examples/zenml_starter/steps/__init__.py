"""The steps of the starter project's pipelines."""

from .data_loader import data_loader
from .data_preprocessor import data_preprocessor
from .data_splitter import data_splitter
from .inference_predict import inference_predict
from .inference_preprocessor import inference_preprocessor
from .model_evaluator import model_evaluator
from .model_promoter import model_promoter
from .model_trainer import model_trainer

__all__ = [
    "data_loader",
    "data_preprocessor",
    "data_splitter",
    "inference_predict",
    "inference_preprocessor",
    "model_evaluator",
    "model_promoter",
    "model_trainer",
]
