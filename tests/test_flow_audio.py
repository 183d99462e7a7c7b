"""A demo call end to end from audio with redacted copies on: the card read out is silent in the copy the
scorecard page plays, nowhere in stored text, and the call's QA result is the one its script implies."""
import shutil
import sys

import numpy as np
import yaml

from conftest import ROOT
from pipeline.store import Store

sys.path.insert(0, str(ROOT / "data"))
import demo_truth  # noqa: E402

CARD_WORDS = ["four one one one", "1111 1111", "4111"]


def decode(path):
    import av

    with av.open(str(path)) as f:
        stream = f.streams.audio[0]
        channels, rate = stream.channels, stream.rate
        frames = [frame.to_ndarray() for frame in f.decode(stream)]
    data = np.concatenate(frames, axis=1)
    if data.shape[0] == 1 and channels > 1:  # packed (interleaved) samples
        data = data.reshape(-1, channels).T
    return data.astype(np.float64), rate


def test_demo_call_with_a_card_number_end_to_end(tmp_path, prefect_harness):
    import flows

    inp = tmp_path / "rec"
    (inp / "2026-11-09").mkdir(parents=True)
    shutil.copy(ROOT / "data/demo/2026-11-09/call-0001.flac", inp / "2026-11-09")
    meta = [line for line in (ROOT / "data/demo/metadata.csv").read_text().splitlines()
            if line.startswith("file,") or ",c-0001," in line]
    (inp / "metadata.csv").write_text("\n".join(meta) + "\n")
    config = tmp_path / "callintel.yaml"
    config.write_text(yaml.safe_dump({"input": "rec", "out": "out", "signals": str(ROOT / "signals"),
                                      "redaction": {"audio": True}}))
    summary = flows.nightly(config=str(config), progress=False)
    assert summary["failures"] == [] and summary["counts"]["transcribed"] == 1

    out = tmp_path / "out"
    store = Store(out)
    words = [w for u in store.read("utterances").to_pylist() for w in u["words"]]
    spans = [(w["start_s"], w["end_s"]) for w in words if w["word"] in ("[CARD]", "[DOB]")]
    assert {w["word"] for w in words} >= {"[CARD]", "[DOB]"}, "the card and birth date in c-0001 were not found"
    copy = out / "redacted_audio/2026-11-09/c-0001.flac"
    original, rate = decode(inp / "2026-11-09/call-0001.flac")
    redacted, rate2 = decode(copy)
    assert rate2 == rate and redacted.shape == original.shape
    for start, end in spans:
        assert not redacted[:, int(start * rate):int(end * rate)].any()          # silent over the card
    first = int((min(spans)[0] - 1) * rate)                                      # and untouched elsewhere
    assert np.array_equal(redacted[:, :first], original[:, :first])
    page = (out / "scorecards/2026-11-09/c-0001.html").read_text()
    assert "redacted_audio/2026-11-09/c-0001.flac" in page and "call-0001.flac" not in page

    card = store.read("scorecards").to_pylist()[0]
    assert {k: card[k] for k in ("pct", "passed", "auto_failed")} == demo_truth.scorecard("c-0001")
    text = " ".join(str(v) for t in ("utterances", "signal_hits", "scorecard_items", "flags")
                    for row in store.read(t).to_pylist() for v in row.values()).lower()
    assert not [c for c in CARD_WORDS if c in text]
