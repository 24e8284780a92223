"""One parser for task ids at every boundary (API header, store, gateway records, memory import)."""

import pytest

from workbench.ids import task_id_or_none

ID = "0b5e7c1c-7a3d-4c59-9f5e-2d3a4b5c6d7e"


@pytest.mark.parametrize("value", [ID, ID.upper(), ID.replace("-", ""), f"{{{ID}}}"])
def test_every_spelling_of_a_uuid_is_the_stored_form(value):
    assert task_id_or_none(value) == ID


@pytest.mark.parametrize("value", [None, "", "my-label", ID[:-1], ID + "0", "1' OR '1'='1", 12345])
def test_anything_else_is_not_a_task_id(value):
    assert task_id_or_none(value) is None
