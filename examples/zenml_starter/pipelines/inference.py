from __future__ import annotations

from steps import data_loader, inference_predict, inference_preprocessor

from mlops_lite import get_pipeline_context, pipeline


@pipeline
def inference(random_state: int, target: str) -> None:
    """Predict on held-back data with the artifacts of the configured model version."""
    model = get_pipeline_context().model
    # Lazy references: resolved to artifact versions when the run starts.
    classifier = model.get_artifact("sklearn_classifier")
    preprocess_pipeline = model.get_artifact("preprocess_pipeline")
    dataset_inf = data_loader(random_state=random_state, is_inference=True)
    dataset_inf = inference_preprocessor(
        dataset_inf=dataset_inf, preprocess_pipeline=preprocess_pipeline, target=target
    )
    inference_predict(model=classifier, dataset_inf=dataset_inf)
