"""Notebooks run end to end under papermill (as a schedule would run them)."""

from __future__ import annotations

import pytest

from helpers import REPO

pytestmark = pytest.mark.timeout(600)


def test_quickstart_notebook(test_model, tmp_path):
    import papermill

    out = tmp_path / "01_quickstart.out.ipynb"
    papermill.execute_notebook(
        str(REPO / "notebooks" / "01_quickstart.ipynb"), str(out),
        parameters={"model": test_model, "other_model": "test:echo", "max_tokens": 60},
        kernel_name="python3", cwd=str(REPO), progress_bar=False,
    )
    assert out.exists()
