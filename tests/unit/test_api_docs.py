"""The API reference builds with pdoc, warns about nothing, and shows the public docstrings."""

from __future__ import annotations

import html
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import mlops_lite

# pdoc follows a package's __all__ to find submodules, and mlops_lite's __all__
# exports the client's classes but not the package itself: it is named here so
# that it gets a page of its own. README.md gives the same command.
MODULES = ("mlops_lite", "mlops_lite.client")


def docstrings_on(page: Path) -> list[str]:
    """The text of every rendered docstring on ``page``, whitespace collapsed."""
    rendered = re.findall(r'<div class="docstring">(.*?)</div>', page.read_text(), re.DOTALL)
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", "", d)).split()) for d in rendered]


def as_rendered(obj: object) -> str:
    """``obj``'s docstring as it reads once rendered: ``code`` loses its backticks."""
    return " ".join((inspect.getdoc(obj) or "").replace("``", "").split())


@pytest.fixture(scope="module")
def api_reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("pdoc")
    output = tmp_path_factory.mktemp("api")
    result = subprocess.run(
        [sys.executable, "-m", "pdoc", *MODULES, "-o", str(output)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    # pdoc reports what it could not document (a module that fails to import, an
    # annotation or a link it cannot resolve) as a warning on stderr.
    assert result.stderr == "", result.stderr
    return output


def test_the_public_modules_have_pages(api_reference: Path) -> None:
    for page in ("mlops_lite.html", "mlops_lite/client.html", "mlops_lite/errors.html"):
        assert (api_reference / page).is_file(), page


def test_the_package_page_shows_the_public_docstrings(api_reference: Path) -> None:
    shown = docstrings_on(api_reference / "mlops_lite.html")
    for name in ("Client", "step", "pipeline", "Run"):
        docstring = as_rendered(getattr(mlops_lite, name))
        assert docstring and docstring in shown, name


def test_the_client_and_errors_pages_show_their_docstrings(api_reference: Path) -> None:
    client_page = docstrings_on(api_reference / "mlops_lite" / "client.html")
    assert as_rendered(mlops_lite.Client) in client_page
    assert as_rendered(mlops_lite.Run) in client_page
    errors_page = docstrings_on(api_reference / "mlops_lite" / "errors.html")
    assert as_rendered(mlops_lite.errors.StepFailedError) in errors_page
