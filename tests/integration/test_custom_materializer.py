"""A user's own materializer: chosen by type, recorded, in the cache key, loadable elsewhere."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import git, run_script

MODULE = textwrap.dedent(
    """
    from dataclasses import dataclass
    from mlops_lite import Materializer, register_materializer

    @dataclass
    class Point:
        x: float
        y: float

    class PointMaterializer(Materializer):
        name = "demo.point"
        version = VERSION
        handled_types = (Point,)

        def save(self, value):
            return f"{value.x},{value.y}".encode()

        def load(self, data):
            x, y = bytes(data).decode().split(",")
            return Point(float(x), float(y))

    register_materializer(PointMaterializer)
    """
)

SCRIPT = textwrap.dedent(
    """
    from points import Point
    from mlops_lite import step, pipeline

    @step
    def make() -> Point:
        print("make executed")
        return Point(1.5, -2.0)

    @pipeline
    def geometry():
        make()

    if __name__ == "__main__":
        run = geometry()
        print("RUN", run.sha)
    """
)


def write(project: Path, version: int) -> None:
    (project / "points.py").write_text(MODULE.replace("VERSION", str(version)))
    (project / "geometry.py").write_text(SCRIPT)
    git(project, "add", ".")
    git(project, "commit", "-qm", f"points v{version}")


def test_custom_materializer_round_trip_and_cache_key(project: Path) -> None:
    write(project, 1)
    first = run_script(project, "geometry.py")
    sha = first.stdout.split("RUN ")[1].split()[0]
    reader = textwrap.dedent(
        f'''
        import json, points
        from mlops_lite import Client
        artifact = Client().get_pipeline_run("{sha}").steps["make"].output
        value = artifact.load()
        print(json.dumps({{"x": value.x, "y": value.y, "materializer": artifact.materializer,
                          "pickle": artifact.uses_pickle, "type": artifact.type_name}}))
        '''
    )
    loaded = json.loads(
        subprocess.run(
            [sys.executable, "-c", reader], cwd=project, capture_output=True, text=True, check=True
        ).stdout
    )
    assert loaded == {
        "x": 1.5,
        "y": -2.0,
        "materializer": "demo.point",
        "pickle": False,
        "type": "points.Point",
    }

    assert "make executed" not in run_script(project, "geometry.py").stdout
    # A new materializer version is a new cache key: the step runs again.
    write(project, 2)
    assert "make executed" in run_script(project, "geometry.py").stdout
