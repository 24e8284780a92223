"""Prompt-prefix reuse on the real small model (qwen2.5-coder-0.5b, Q4_K_M, in its model host).

Two call sites take turns, as the Director and the code loop do: each revisit starts with the same
system prompt (and, for the code rounds, the same task text) as an earlier prompt, never as the one just
before it. With the prompt cache the revisits evaluate only what is new; with it off (a host of its own)
everything is evaluated. The answers must be the same, token for token, at temperature 0.
"""

from __future__ import annotations

import pytest

import workbench
from workbench import providers
from workbench.config import reload_settings
from workbench.providers.prompt_cache import BLOCK
from workbench.testing import MemorySink

pytestmark = pytest.mark.timeout(900)

DIRECTOR = (
    "You are the Director of a team of specialists. Split the user's task into as few subtasks as possible: one "
    "per distinct part of the task. A task asking for two different things has two parts; a simple task is one "
    "subtask; never more than four. Give each subtask to the specialist whose description fits it best.\n"
    "Specialists:\n"
    "- general: answers questions, explains concepts, writes prose, and handles anything no other specialist fits.\n"
    "- code: writes, fixes and tests programs in Python, TypeScript or Java, and runs them in a sandbox.\n"
    "- data: loads CSV, Parquet or JSON files, summarises them, and answers questions about their columns.\n"
    "- research: searches the documents in the workspace and cites the passages it used.\n"
    "Fields: \"reasoning\" is one short sentence naming the parts. Each subtask has an id (s1, s2, ... in order), "
    "a specialist, \"instructions\" (one short sentence: that part of the task, in the user's words) and "
    "\"depends_on\" (ids of earlier subtasks whose results it needs; [] when it can start at once).\n"
    'Reply with JSON only: {"reasoning": "...", "subtasks": [{"id": "s1", "specialist": "...", '
    '"instructions": "...", "depends_on": []}]}'
)
CODER = ("You are a careful programmer. You answer with complete files in fenced code blocks, each block starting "
         "with the file name as a comment, and nothing else after the blocks.")
TASK = ("Task:\nWrite a function `roman(n: int) -> str` that converts an integer from 1 to 3999 to a Roman numeral. "
        "Use the subtractive forms IV, IX, XL, XC, CD and CM. Examples: roman(3) == 'III', roman(58) == 'LVIII', "
        "roman(1994) == 'MCMXCIV'. Numbers outside 1..3999 raise ValueError with a message naming the number. "
        "Also write `parse_roman(text: str) -> int`, the inverse, which accepts upper or lower case and raises "
        "ValueError on anything that is not a valid numeral, such as 'IIII' or 'VX'.\n\n")
ROUTE_SCHEMA = {"type": "object", "properties": {"specialist": {"enum": ["general", "code", "data", "research"]}},
                "required": ["specialist"]}


def director(request: str) -> list[dict]:
    return [{"role": "system", "content": DIRECTOR}, {"role": "user", "content": request}]


def code_round(instruction: str, previous: str | None = None) -> list[dict]:
    messages = [{"role": "system", "content": CODER}, {"role": "user", "content": TASK + instruction}]
    if previous is not None:
        messages += [{"role": "assistant", "content": previous},
                     {"role": "user", "content": "That did not work: test_roman_1994 failed. Fix it."}]
    return messages


# The two call sites take turns; every prompt but the first of each site revisits an earlier one's prefix.
SEQUENCE: list[tuple[list[dict], dict]] = [
    (director("Write a function that sorts a list of names, and explain how it works."), {}),
    (code_round("Write ONLY the test file test_roman.py for this task, using pytest."), {}),
    (director("Summarise the columns of sales.csv."), {"schema": ROUTE_SCHEMA}),
    (code_round("Write the complete file roman.py."), {"stream": True}),
    (director("What is a closure in Python? Give an example."), {}),
    (code_round("Write the complete file roman.py.", previous="def roman(n):\n    return 'I' * n\n"), {}),
]


def run_sequence(name: str, monkeypatch, cache_mb: int) -> tuple[list[str], list[int], dict, MemorySink]:
    monkeypatch.setenv("WORKBENCH_LOCAL_PROMPT_CACHE_MB", str(cache_mb))
    reload_settings()
    model = workbench.get_model(name)
    texts, reused = [], []
    with MemorySink() as sink:
        for messages, options in SEQUENCE:
            options = {"max_tokens": 32, "temperature": 0, "seed": 1, "cache": False, **options}
            if options.pop("stream", False):
                stream = model.stream(messages, **options)
                "".join(stream)
                completion = stream.completion
            else:
                completion = model.complete(messages, **options)
            texts.append(completion.text)
            reused.append(completion.usage.cache_read_tokens)
    return texts, reused, providers.get_model(name).host_stats()["prompt_cache"], sink


def test_same_answers_with_and_without_reuse_and_the_trace_shows_the_tokens_reused(test_model, monkeypatch):
    with_cache, reused, stats, sink = run_sequence(test_model, monkeypatch, cache_mb=64)
    without, reused_off, stats_off, _ = run_sequence(test_model, monkeypatch, cache_mb=0)

    for i, (a, b) in enumerate(zip(with_cache, without)):
        assert a == b, f"call {i} answered differently with prompt reuse:\n{a!r}\nwithout:\n{b!r}"
    # Without the cache the turns never share more than the chat template with the prompt just before.
    assert reused_off == [0] * len(SEQUENCE) and stats_off["capacity_bytes"] == 0 and stats_off["saved"] == 0
    # With it, each revisit restores an earlier prompt: the system prompt, the task text, the whole last round.
    assert reused[:2] == [0, 0] and all(n >= BLOCK for n in reused[2:]), reused
    assert stats["restored"] >= 4 and 0 < stats["bytes"] <= stats["capacity_bytes"] == 64 << 20, stats

    calls = sink.of("llm_call")
    assert [c.get("cache_read_tokens") for c in calls] == reused
    assert all(c.tokens_in > c.get("cache_read_tokens") for c in calls)


def test_the_setting_reaches_the_host(test_model, monkeypatch):
    monkeypatch.setenv("WORKBENCH_LOCAL_PROMPT_CACHE_MB", "0")
    reload_settings()
    off = providers.get_model(test_model)
    monkeypatch.setenv("WORKBENCH_LOCAL_PROMPT_CACHE_MB", "16")
    reload_settings()
    on = providers.get_model(test_model)
    assert off.host() is not on.host()  # a different cache is a different host, not a shared one
    assert off.host_stats()["prompt_cache"]["capacity_bytes"] == 0
    assert on.host_stats()["prompt_cache"]["capacity_bytes"] == 16 << 20


def test_a_new_host_starts_with_the_prompts_an_earlier_one_shelved(test_model, monkeypatch, isolated_home):
    monkeypatch.setenv("WORKBENCH_LOCAL_PROMPT_CACHE_MB", "64")
    monkeypatch.setenv("WORKBENCH_LOCAL_PROMPT_CACHE_DISK_MB", "64")
    reload_settings()
    model = workbench.get_model(test_model)
    messages, options = SEQUENCE[0]
    options = {"max_tokens": 32, "temperature": 0, "seed": 1, "cache": False}
    first = model.complete(messages, **options)
    host = providers.get_model(test_model).host()
    assert providers.get_model(test_model).host_stats()["prompt_cache"]["shelved"] == 1
    shelf = list((isolated_home / "cache" / "prompt-prefix").glob("*/*.kv"))
    assert len(shelf) == 1 and shelf[0].stat().st_size > 0
    host.close()  # the next call starts a new host: a CLI run, a Dask worker, a restarted server

    again = model.complete(messages, **options)
    assert providers.get_model(test_model).host().pid != host.pid
    assert first.usage.cache_read_tokens == 0 and again.usage.cache_read_tokens >= BLOCK
    assert again.text == first.text  # the shelved prefix gives the very same answer
    assert providers.get_model(test_model).host_stats()["prompt_cache"]["unshelved"] == 1


# --- the mechanism itself, bit for bit: the logits the first answer token is sampled from ------------------
# In a child process: this one must never load llama.cpp (test_model_isolation checks it).

BIT_FOR_BIT = """
import json, os, sys
import numpy as np
from workbench import weights
from workbench.config import get_settings
from workbench.providers.llama_reuse import ReusingLlama
from workbench.providers.prompt_cache import PrefixStore, whole_blocks

name, shared, task, other = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
llm = ReusingLlama(model_path=str(weights.verified_path(name)), n_ctx=2048, verbose=False,
                   n_threads=get_settings().n_threads or os.cpu_count() or 1, n_batch=512)

def first_logits(prompt):
    generation = llm.generate(prompt, temp=0.0)
    next(generation)  # the prompt is evaluated and one token sampled from these logits
    logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).copy()
    generation.close()
    return logits

def diff(a, b):
    return float(np.abs(a - b).max())

base = llm.tokenize(task.encode(), add_bos=False)[:shared]
first = base + llm.tokenize(b" Answer in French, briefly.", add_bos=False)
second = base + llm.tokenize(b" Now write the tests, with pytest.", add_bos=False)
out = {"expected": whole_blocks(shared, len(second)), "long_enough": len(base) == shared}
fresh = first_logits(second)
out["fresh_reused"] = llm.reused_tokens
llm.prefix_store = PrefixStore(64 << 20)
first_logits(first)  # evaluated, snapshotted
first_logits(llm.tokenize(other.encode(), add_bos=False))  # the context now holds another prompt
restored = first_logits(second)
out.update(restored_reused=llm.reused_tokens, restored_diff=diff(restored, fresh))
llm.prefix_store = None
first_logits(first)
live = first_logits(second)  # the previous prompt's prefix, still in the context
out.update(live_reused=llm.reused_tokens, live_diff=diff(live, fresh))
print(json.dumps(out))
"""


@pytest.mark.parametrize("shared", [301, 334])  # not multiples of 4: llama.cpp's kernels treat batch tails apart
def test_a_reused_prefix_gives_the_same_logits_bit_for_bit(test_model, shared):
    """A prompt evaluated after a restored snapshot, or after the previous prompt, gives exactly the logits
    of a fresh evaluation."""
    import json
    import subprocess
    import sys

    from helpers import REPO

    run = subprocess.run([sys.executable, "-c", BIT_FOR_BIT, test_model.removeprefix("local:"), str(shared),
                          TASK * 4, CODER * 6], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["long_enough"] and out["fresh_reused"] == 0 and out["expected"] > 0
    assert out["restored_reused"] == out["expected"] and out["restored_diff"] == 0.0, out
    assert out["live_reused"] == out["expected"] and out["live_diff"] == 0.0, out
