"""The installed version of workbench, from the package metadata (the source tree's when not installed)."""

from __future__ import annotations


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("workbench")
    except PackageNotFoundError:
        import workbench

        return workbench.__version__
