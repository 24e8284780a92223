"""`ReusingLlama`: llama-cpp-python's Llama that reuses evaluated prompt prefixes across call sites.

llama-cpp-python by itself keeps the common prefix of a prompt with the context's *previous* prompt
(`Llama.generate` compares `_input_ids` with the new tokens and drops only the rest of the KV cache). That
helps when one call site asks twice in a row, and not at all when call sites take turns: the Director's
prompt, then the code loop's, then the Director's again, each finds the other's tokens in the context and
evaluates its whole system prompt again (about 25 s per 1,000 tokens for the 1.5B model on two cores).

With a `PrefixStore` attached, each generation:
  1. restores the stored snapshot sharing the longest prefix with the prompt, when it beats what the
     context already holds; Llama.generate then evaluates only the rest, as after its own previous prompt;
  2. snapshots the KV cache right after the prompt is evaluated (before the first sampled token enters
     it), keyed by the prompt's tokens.
A snapshot is sequence 0's KV cells (`llama_state_seq_get_data`), not the whole context state that
`Llama.save_state` copies (which includes a n_batch x n_vocab logits array, 300 MB for a 150k vocabulary).
The logits are never restored: the block holding the prompt's last token is always evaluated again.

Same answer with or without reuse. A token's KV values depend on how its batch was cut, not only on the
tokens before it: llama.cpp's CPU kernels compute most rows of a batch with a tiled matrix product and the
last few with a vector one, and the two round differently. Reusing 423 tokens and evaluating 12 gives
other numbers than evaluating all 435 at once, enough to change a greedy answer after a few dozen tokens.
So every prompt, reused or not, is evaluated in blocks cut at multiples of `BLOCK`, and only whole blocks
evaluated as prompt (never tokens generated one at a time) are reused: each block then sees exactly the
batch it would in a fresh evaluation, and the result is bit for bit the same.

Either way `reused_tokens` says how many prompt tokens the last generation did not evaluate.
Only the model host process imports this module (it loads llama.cpp).
"""

from __future__ import annotations

import ctypes
from collections.abc import Generator, Sequence
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp import Llama

from workbench.providers.prompt_cache import BLOCK, PrefixStore, Snapshot, common_prefix, whole_blocks

SEQ = 0  # llama-cpp-python decodes every prompt as sequence 0


class ReusingLlama(Llama):
    prefix_store: PrefixStore | None = None  # None: reuse only what the context holds from the last prompt
    reused_tokens = 0  # prompt tokens the last generation took from the KV cache instead of evaluating
    _prompt: list[int] | None = None  # the prompt of the generation whose first eval has not run yet
    _from_prompts = 0  # leading tokens of the context evaluated as prompt blocks (not generated one by one)

    def generate(self, tokens: Sequence[int], *args: Any, **kwargs: Any) -> Generator[int, Any, None]:
        prompt = list(tokens)
        self._keep(self._reusable(prompt))
        self.reused_tokens = self.n_tokens
        self._prompt = prompt
        try:
            return (yield from super().generate(prompt, *args, **kwargs))
        finally:
            self._prompt = None

    def eval(self, tokens: Sequence[int]) -> None:
        prompt, self._prompt = self._prompt, None
        if prompt is None:  # a sampled token
            super().eval(tokens)
            return
        tokens = list(tokens)
        while tokens:  # the rest of the prompt, in blocks aligned to multiples of BLOCK
            room = BLOCK - self.n_tokens % BLOCK
            super().eval(tokens[:room])
            tokens = tokens[room:]
        self._from_prompts = self.n_tokens
        store = self.prefix_store
        if store is not None and self.n_tokens == len(prompt) and store.wants(prompt):
            store.add(self._snapshot(prompt))

    def _reusable(self, prompt: list[int]) -> int:
        """Tokens to keep for `prompt`: from the context as it is, or from a stored snapshot when that
        gives more (then restored here)."""
        live = whole_blocks(common_prefix(self.input_ids[:min(self.n_tokens, self._from_prompts)], prompt),
                            len(prompt))
        if self.prefix_store is None:
            return live
        snapshot, shared = self.prefix_store.best(prompt)
        stored = whole_blocks(shared, len(prompt))
        if snapshot is None or stored <= live or not self._restore(snapshot):
            return live
        self.prefix_store.used(snapshot)
        return stored

    def _keep(self, n: int) -> None:
        """Drop all but the first `n` tokens of the context (Llama.generate then evaluates the rest)."""
        self._ctx.kv_cache_seq_rm(SEQ, n, -1)
        self.n_tokens = n
        self._from_prompts = min(self._from_prompts, n)
        self._requires_eval = True

    def _snapshot(self, prompt: list[int]) -> Snapshot:
        ctx = self._ctx.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, SEQ)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx, buffer, size, SEQ)
        return Snapshot(np.array(prompt, dtype=np.intc), ctypes.string_at(buffer, written))

    def _restore(self, snapshot: Snapshot) -> bool:
        """Load `snapshot` into the context; on failure the context is left empty (a full evaluation follows)."""
        self._ctx.kv_cache_seq_rm(SEQ, 0, -1)
        buffer = (ctypes.c_uint8 * len(snapshot.data)).from_buffer_copy(snapshot.data)
        if llama_cpp.llama_state_seq_set_data(self._ctx.ctx, buffer, len(snapshot.data), SEQ) != len(snapshot.data):
            self._keep(0)
            return False
        n = len(snapshot.tokens)
        self.input_ids[:n] = snapshot.tokens
        self.n_tokens = self._from_prompts = n
        self._requires_eval = True  # the logits are not restored: generate evaluates at least one token
        return True
