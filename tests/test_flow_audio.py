"""A demo call end to end from audio with redacted copies on: the card read out is silent in the copy the
scorecard page plays, nowhere in stored text, and the call's QA result is the one its script implies."""
import shutil
import sys

import numpy as np
import yaml

from conftest import ROOT, strings_in
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


def one_call(tmp_path):
    """c-0001's recording and metadata in tmp_path/rec, and a config with redacted copies on."""
    inp = tmp_path / "rec"
    (inp / "2026-11-09").mkdir(parents=True)
    shutil.copy(ROOT / "data/demo/2026-11-09/call-0001.flac", inp / "2026-11-09")
    meta = [line for line in (ROOT / "data/demo/metadata.csv").read_text().splitlines()
            if line.startswith("file,") or ",c-0001," in line]
    (inp / "metadata.csv").write_text("\n".join(meta) + "\n")
    config = tmp_path / "callintel.yaml"
    config.write_text(yaml.safe_dump({"input": "rec", "out": "out", "signals": str(ROOT / "signals"),
                                      "redaction": {"audio": True}}))
    return inp, config


def test_demo_call_with_a_card_number_end_to_end(tmp_path, prefect_harness):
    import flows

    inp, config = one_call(tmp_path)
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
    text = " ".join(strings_in([store.read(t).to_pylist() for t in ("utterances", "signal_hits", "scorecard_items",
                                                                     "flags")]))
    assert not [c for c in CARD_WORDS if c in text]


def as_an_earlier_release_left_it(store: Store, source) -> tuple[dict, dict]:
    """The card's words back in the text (as tiny.en heard them: "4242" four times over the card's time) and a
    copy that plays them, as a release that missed the card would have stored the call. Returns (call, card)."""
    from pipeline.audio_redact import redact_audio
    from pipeline.schemas import conform

    utterances = store.read("utterances").to_pylist()
    card = next(w for u in utterances for w in u["words"] if w["word"] == "[CARD]")
    for u in utterances:  # the card as tiny.en heard it on this call: "4242" four times over the card's time
        if card in u["words"]:
            step = (card["end_s"] - card["start_s"]) / 4
            said = [dict(card, word="4242", start_s=card["start_s"] + k * step,
                         end_s=card["start_s"] + (k + 1) * step) for k in range(4)]
            at = u["words"].index(card)
            u["words"] = u["words"][:at] + said + u["words"][at + 1:]
            u["text"] = " ".join(w["word"] for w in u["words"])
    call = store.read("calls").to_pylist()[0]
    with store.lock():
        store.write_audio(call, lambda tmp: redact_audio(source, tmp, [], call["agent_channel"]))  # nothing silent
        store.commit("older", 1, {"utterances": conform("utterances", utterances)},
                     remove={"utterances": store.manifest()["utterances"]}, meta={"redaction_hash": "older release"})
    return call, card


def test_a_copy_an_earlier_release_left_unsilenced_is_made_again(tmp_path, prefect_harness):
    """A night under the new rules redacts the text again and silences the copy over the card; with the
    recording gone, the copy cannot be made again and is removed."""
    import flows

    inp, config = one_call(tmp_path)
    flows.nightly(config=str(config), progress=False)
    store = Store(tmp_path / "out")
    source = inp / "2026-11-09/call-0001.flac"
    call, card = as_an_earlier_release_left_it(store, source)
    utterances = store.read("utterances").to_pylist()
    original, rate = decode(source)
    assert np.array_equal(decode(store.audio_path(call))[0], original)

    again = flows.nightly(config=str(config), progress=False)
    assert any(n.startswith("redaction rules changed: redacted 1 more") for n in again["notes"]), again["notes"]
    text = " ".join(u["text"] for u in store.read("utterances").to_pylist())
    assert "4242" not in text and "[CARD]" in text
    redacted, _ = decode(store.audio_path(call))
    assert not redacted[:, int(card["start_s"] * rate):int(card["end_s"] * rate)].any()  # silent over the card
    first = min(w["start_s"] for u in utterances for w in u["words"] if w["word"].startswith("["))  # the DOB
    assert np.array_equal(redacted[:, :int((first - 1) * rate)], original[:, :int((first - 1) * rate)])

    as_an_earlier_release_left_it(store, source)
    source.rename(tmp_path / "elsewhere.flac")  # the recording system kept it for 30 days
    third = flows.nightly(config=str(config), progress=False)
    assert not store.audio_path(call).exists()
    assert "c-0001: redacted audio copy removed, not made again" in " ".join(third["notes"])


def test_an_out_folder_inside_the_input_folder_is_not_read_as_recordings(tmp_path, prefect_harness):
    """out: rec/out beside the day folders: the redacted copy written there is a .flac under the input folder, and
    was stored as a new call the next night (the same call twice in every table)."""
    import flows

    inp, config = one_call(tmp_path)
    config.write_text(config.read_text().replace("out: out", "out: rec/out"))
    first = flows.nightly(config=str(config), progress=False)
    assert (first["counts"]["transcribed"], first["failures"]) == (1, [])
    assert (inp / "out/redacted_audio/2026-11-09/c-0001.flac").exists()
    second = flows.nightly(config=str(config), progress=False)
    assert (second["counts"]["found"], second["counts"]["transcribed"], second["failures"]) == (1, 0, [])
    assert Store(inp / "out").read("calls", ["call_id"]).column("call_id").to_pylist() == ["c-0001"]
