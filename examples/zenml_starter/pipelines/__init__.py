"""The starter project's pipelines: feature engineering, training, batch inference."""

from .feature_engineering import feature_engineering
from .inference import inference
from .training import training

__all__ = ["feature_engineering", "inference", "training"]
