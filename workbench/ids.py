"""Task ids at every boundary (an API header, a CLI argument, a record's field): one parser, one form."""

from __future__ import annotations

import uuid
from typing import Any


def task_id_or_none(value: Any) -> str | None:
    """The task id in its stored form (a lowercase, dashed UUID) if `value` is one (with or without dashes,
    any case); None if it is not."""
    if value is None:
        return None
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None
