"""Models a user brings: `local:/path/to/model.gguf` and `workbench models add NAME --gguf PATH`.

The file checks run here (no model loads); everything that loads a model runs through the real CLI in a
subprocess, so llama_cpp never enters this process. The real-model tests use the smallest catalog model's
file, linked to a temporary path as a user's own file would be.
"""

from __future__ import annotations

import json
import os

import pytest
from helpers import require, run_cli

from workbench import weights
from workbench.providers import gguf

pytestmark = pytest.mark.timeout(300)
SMALL = "qwen2.5-coder-0.5b"  # pulled by `make setup` (the test model)


def one_line_error(out, *words: str) -> None:
    assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    for word in words:
        assert word in out.stderr, out.stderr


@pytest.fixture
def small_gguf(tmp_path):
    require(weights.status(SMALL)[0], f"{SMALL} weights not pulled: run `workbench models pull {SMALL}`")
    link = tmp_path / "my model.gguf"  # a space in the path, as users' paths have
    link.symlink_to(weights.weights_path(SMALL))
    return link


# --- the file checks (no model is loaded) --------------------------------------------------------------


def test_check_file_needs_an_existing_gguf_file(tmp_path):
    with pytest.raises(gguf.NotGGUF, match="No such file"):
        gguf.check_file(tmp_path / "missing.gguf")
    with pytest.raises(gguf.NotGGUF, match="is not a file"):
        gguf.check_file(tmp_path)
    text = tmp_path / "notes.gguf"
    text.write_text("hello, not a model")
    with pytest.raises(gguf.NotGGUF, match=r"not a GGUF file \(it starts with b'hell'"):
        gguf.check_file(text)
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    with pytest.raises(gguf.NotGGUF, match="not a GGUF file"):
        gguf.check_file(empty)
    magic = tmp_path / "magic.gguf"
    magic.write_bytes(b"GGUF" + bytes(60))
    assert gguf.check_file(magic) == magic


def test_a_local_name_is_a_path_when_it_looks_like_one():
    for name in ("/models/x.gguf", "./x.gguf", "../m/x.bin", "~/x.gguf", "x.GGUF"):
        assert gguf.is_path(name), name
    for name in ("qwen2.5-coder-1.5b", "mine", "smollm2-135m"):
        assert not gguf.is_path(name), name


def test_names_are_checked_before_the_file(tmp_path):
    for bad in ("Bad Name", "-x", "a/b", "x" * 65, ""):
        with pytest.raises(Exception, match="Invalid model name"):
            gguf.add(bad, tmp_path / "never-read.gguf", reserved=set())
    with pytest.raises(Exception, match="built-in model"):
        gguf.add("smollm2-135m", tmp_path / "never-read.gguf", reserved=set(weights.CATALOG))
    assert gguf.added() == {}


# --- bad input through the CLI: one line, non-zero exit, nothing recorded ------------------------------


def test_bad_paths_are_one_line_and_record_nothing(tmp_path):
    out = run_cli("models", "add", "mine", "--gguf", str(tmp_path / "nowhere.gguf"))
    one_line_error(out, "No such file", "nowhere.gguf")
    text = tmp_path / "readme.gguf"
    text.write_text("# not a model\n")
    one_line_error(run_cli("models", "add", "mine", "--gguf", str(text)), "is not a GGUF file")
    one_line_error(run_cli("models", "add", "mine", "--gguf", str(tmp_path)), "is not a file")
    one_line_error(run_cli("ask", "hi", "--model", f"local:{text}"), "is not a GGUF file")
    one_line_error(run_cli("ask", "hi", "--model", f"local:{tmp_path / 'gone.gguf'}"), "No such file")
    assert gguf.added() == {}


def test_a_gguf_that_does_not_load_is_refused_after_a_child_tried_it(tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + os.urandom(4096))  # the magic, then no model
    out = run_cli("models", "add", "broken", "--gguf", str(broken))
    one_line_error(out, "did not load in llama.cpp", str(broken))
    assert gguf.added() == {}


# --- a real file: added, listed, asked, priced by CPU time ---------------------------------------------


def test_add_list_and_ask_a_brought_model(small_gguf):
    out = run_cli("models", "add", "mine", "--gguf", str(small_gguf), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"name": "local:mine", "path": str(small_gguf)}
    assert gguf.added()["mine"].path == str(small_gguf)

    listed = run_cli("models", "--json")
    assert listed.returncode == 0, listed.stderr
    models = {m["name"]: m for m in json.loads(listed.stdout)}
    mine = models["local:mine"]
    assert mine["usable"] is True and mine["reason"] == "verified"
    assert mine["source"] == f"GGUF: {small_gguf}" and mine["price"].endswith("/CPU-s")
    text = run_cli("models")
    assert text.returncode == 0 and "local:mine" in text.stdout.replace("\n", "")  # the table, not only JSON

    asked = run_cli("ask", "Say hi", "--model", "local:mine", "--max-tokens", "4", "--json")
    assert asked.returncode == 0, asked.stderr
    data = json.loads(asked.stdout)
    assert data["model"] == "local:mine" and data["usage"]["output_tokens"] > 0
    assert data["cost_source"] == "cpu-seconds" and data["cost_usd"] > 0


def test_a_gguf_path_is_a_model_name(small_gguf):
    asked = run_cli("ask", "Say hi", "--model", f"local:{small_gguf}", "--max-tokens", "4", "--json")
    assert asked.returncode == 0, asked.stderr
    data = json.loads(asked.stdout)
    assert data["model"] == f"local:{small_gguf}" and data["cost_source"] == "cpu-seconds" and data["cost_usd"] > 0
    # The load check ran once, in a child, and is remembered for this version of the file.
    assert gguf.status(small_gguf) == (True, "verified")


def test_a_changed_file_is_checked_again(tmp_path):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + bytes(64))
    assert gguf.status(model) == (True, "GGUF; loads are checked at first use (the file is new or changed)")
    gguf._write(gguf._verified_file(), {str(model): gguf._identity(model)})  # as a successful load check does
    assert gguf.status(model) == (True, "verified")
    model.write_bytes(b"GGUF" + bytes(65))
    assert "checked at first use" in gguf.status(model)[1]
