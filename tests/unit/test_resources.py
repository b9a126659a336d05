"""A step's resource request (ZenML's ResourceSettings names) and the sizes people write."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlops_lite import pipeline, step
from mlops_lite.core.resources import ResourceRequest, parse_resources
from mlops_lite.core.sizes import format_size, parse_size
from mlops_lite.definition.config import configure, load_config_file
from mlops_lite.errors import DefinitionError


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("8GiB", 8 * 1024**3),
        ("8Gi", 8 * 1024**3),
        ("8GB", 8 * 1000**3),
        ("512 MiB", 512 * 1024**2),
        ("1.5K", 1500),
        ("100", 100),
        (4096, 4096),
        ("2TiB", 2 * 1024**4),
    ],
)
def test_sizes_read_as_zenml_kubernetes_and_people_write_them(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "-1", -1, True, "8 XB", 1.5, None])
def test_what_is_not_a_size_is_none(text: object) -> None:
    assert parse_size(text) is None


@given(st.integers(min_value=0, max_value=2**50))
def test_a_formatted_size_reads_back_within_its_rounding(size: int) -> None:
    text = format_size(size)
    back = parse_size(text.replace(" bytes", ""))
    assert back is not None and abs(back - size) <= 1 + size * 0.05  # one decimal place


def test_a_request_is_read_with_zenml_names() -> None:
    request = parse_resources({"cpu_count": 2, "gpu_count": 1, "memory": "8GiB"}, "step 'x'")
    assert request == ResourceRequest(2.0, 1, 8 * 1024**3)
    assert request.describe() == "2 CPUs, 1 GPU, 8.0 GiB of memory"
    assert request.cpu_slots == 2
    assert parse_resources({"cpu_count": 0.5}, "x").cpu_slots == 1
    assert not parse_resources({"gpu_count": 0}, "x")
    # Fields about serving deployments are ZenML's too: accepted, nothing to place.
    assert not parse_resources({"min_replicas": 1}, "x")


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"gpu": 1}, "unknown resource 'gpu' (did you mean 'gpu_count'?)"),
        ({"cpu_count": 0}, "cpu_count must be a positive number"),
        ({"gpu_count": 1.5}, "gpu_count must be a whole number"),
        ({"memory": "lots"}, "memory must be a size such as '8GiB'"),
        ("2 CPUs", "settings['resources'] must be a mapping"),
    ],
)
def test_a_wrong_request_fails_where_the_step_is_defined(resources: object, message: str) -> None:
    with pytest.raises(DefinitionError, match="step 'train'") as caught:

        @step(settings={"resources": resources})
        def train() -> int:
            return 1

    assert message in str(caught.value)


def test_a_steps_request_is_on_its_options() -> None:
    @step(settings={"resources": {"gpu_count": 1}})
    def train() -> int:
        return 1

    assert train.options.resources == ResourceRequest(gpu_count=1)


def test_a_request_is_not_warned_about_and_a_wrong_one_in_a_config_file_fails(
    tmp_path: Path,
) -> None:
    @step
    def train() -> int:
        return 1

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "has no effect" would be a lie here
        placed = train.with_options(settings={"resources": {"cpu_count": 2}})
    assert placed.options.resources == ResourceRequest(cpu_count=2)

    @pipeline
    def training() -> None:
        train()

    config = tmp_path / "run.yaml"
    config.write_text("steps:\n  train:\n    settings:\n      resources: {gpu_cont: 1}\n")
    with pytest.raises(DefinitionError, match="did you mean 'gpu_count'"):
        configure(training, load_config_file(config))
