"""Audio redaction on a real call: c-0001's customer reads out a Visa number.

The real stages run first (transcription of both channels, then text redaction), and their [CARD] and [DOB]
placeholders drive redact_audio: the copy is silent over those spans on both channels, sample-identical
everywhere else, and Whisper hears no card digits in it where the number was read.
"""
import json
import re

import av
import numpy as np
import pandas as pd
import pytest

from conftest import ROOT
from pipeline.audio_redact import redact_audio, redaction_spans
from pipeline.ingest import plan_recordings
from pipeline.redact import redact_utterances
from pipeline.transcribe import SAMPLE_RATE, AsrOptions, Transcriber, decode, transcribe_words

DEMO = ROOT / "data/demo"
CALL = DEMO / "2026-11-09/call-0001.flac"
NOTHING = pd.DataFrame({"call_id": [], "source_path": [], "file_size": [], "file_mtime": []})
DIGITS = {"zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}
# The scripted line with the card number (data/demo_script.yaml, pii: [card]) and its exact times.
CARD_LINE = next(u for u in json.loads((ROOT / "data/demo_transcripts/c-0001.json").read_text())["utterances"]
                 if "The number is four two four two" in u["text"])


@pytest.fixture(scope="module")
def redacted(tmp_path_factory):
    (job,) = [j for j in plan_recordings(DEMO, NOTHING, "left").jobs if j.call_id == "c-0001"]
    with Transcriber(AsrOptions(), workers=2, progress=False) as tr:
        (result,) = tr.run([job])
    clean, found = redact_utterances([dict(u, call_id=job.call_id) for u in result.utterances])
    target = tmp_path_factory.mktemp("redacted") / "c-0001.flac"
    silenced = redact_audio(CALL, target, clean, job.agent_channel)
    return result.utterances, clean, found, target, silenced


def samples(path) -> tuple[np.ndarray, int]:
    """(frames x channels) int16 at the file's own rate, and that rate."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        pcm = np.concatenate([f.to_ndarray().reshape(-1, stream.codec_context.channels)
                              for f in container.decode(audio=0)])
        return pcm, stream.codec_context.sample_rate


def digits(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z]+|\d", text.lower()) if w in DIGITS or w.isdigit()]


def test_the_card_is_silent_on_both_channels_and_everything_else_is_untouched(redacted):
    _, clean, found, target, silenced = redacted
    cards = [w for u in clean for w in u["words"] if w["word"] == "[CARD]"]
    assert found["card"] >= 1 and cards
    assert all(CARD_LINE["start_s"] - 1 <= w["start_s"] and w["end_s"] <= CARD_LINE["end_s"] + 1 for w in cards)
    spans = redaction_spans(clean, margin_s=0.15)
    assert silenced == len(spans) >= 2  # the card, and the date of birth read earlier in the call

    original, rate = samples(CALL)
    copy, copy_rate = samples(target)
    assert (copy_rate, copy.shape, copy.dtype) == (rate, original.shape, original.dtype)  # 8 kHz stereo s16
    inside = np.zeros(len(original), bool)
    for start, end in spans:
        inside[int(np.floor(start * rate)):int(np.ceil(end * rate))] = True
    assert np.array_equal(copy[~inside], original[~inside])
    assert not copy[inside].any()  # both channels, RMS exactly 0
    for w in cards:  # something was there to take out
        card = slice(int(w["start_s"] * rate), int(w["end_s"] * rate))
        assert np.sqrt(np.mean(original[card, 1].astype(float) ** 2)) > 300


def test_whisper_hears_no_card_digits_in_the_redacted_copy(redacted, whisper):
    heard, _, _, target, _ = redacted
    start, end = CARD_LINE["start_s"] - 0.5, CARD_LINE["end_s"] + 0.5
    # the customer's turns over the line (Whisper may start it a little early, while the agent is finishing)
    original = " ".join(u["text"] for u in heard if u["speaker"] == "customer" and u["start_s"] < end
                        and u["end_s"] > start)
    assert len(digits(original)) >= 8  # in the recording Whisper heard "4242 4242 ..." (before text redaction)
    audio = decode(target, 1)[int(start * SAMPLE_RATE):int(end * SAMPLE_RATE)]  # customer: right channel
    again = " ".join(w.word for w in transcribe_words(whisper, audio, AsrOptions(), "customer"))
    assert digits(again) == [], again
    assert "put it on my new" in again.lower()  # the words before the number are still there


def test_without_placeholders_the_copy_is_exact_and_a_bad_source_leaves_nothing(tmp_path):
    from conftest import JFK

    said = [{"words": [{"word": "ask", "start_s": 4.0, "end_s": 4.3}, {"word": "[card]", "start_s": 5, "end_s": 6}]}]
    assert redact_audio(JFK, tmp_path / "copy.flac", said, "mono") == 0  # only "[CARD]"-shaped words count
    assert np.array_equal(samples(tmp_path / "copy.flac")[0], samples(JFK)[0])  # 44.1 kHz stereo, decoded as s32

    (tmp_path / "notes.mp3").write_text("not audio\n" * 50)
    with pytest.raises(ValueError, match="cannot decode audio"):
        redact_audio(tmp_path / "notes.mp3", tmp_path / "out.flac", said, "left")
    assert not (tmp_path / "out.flac").exists()
    with pytest.raises(ValueError, match="agent_channel 'centre' must be one of left, right, mono"):
        redact_audio(JFK, tmp_path / "out.flac", said, "centre")


def test_a_placeholder_ending_its_turn_is_silenced_past_whisper_s_early_end_but_not_into_the_next_turn():
    """Whisper timed the last "four two four two" of c-0001's card 1 s before the customer stopped saying it; the
    copy silenced to the word's end still said "242". A span reaches the quiet beside it: back to the previous
    word, on to the end of the turn and up to EDGE_S past it, never into the next turn."""
    card = {"speaker": "customer", "start_s": 3.0, "end_s": 7.0, "words": [
        {"word": "number", "start_s": 3.0, "end_s": 4.2}, {"word": "[CARD]", "start_s": 5.0, "end_s": 7.0}]}
    reply = {"speaker": "agent", "start_s": 7.6, "end_s": 9.0,
             "words": [{"word": "Thanks", "start_s": 7.6, "end_s": 9.0}]}
    assert redaction_spans([card, reply]) == [(4.2, 7.6)]  # the next turn starts 0.6 s after the card's end
    reply.update(start_s=9.5, words=[{"word": "Thanks", "start_s": 9.5, "end_s": 10.0}])
    assert redaction_spans([card, reply]) == [(4.2, 8.0)]  # EDGE_S (1 s) past the card's end
    first = {"speaker": "customer", "start_s": 2.0, "end_s": 4.0,
             "words": [{"word": "[SSN]", "start_s": 2.0, "end_s": 4.0}]}
    question = {"speaker": "agent", "start_s": 0.5, "end_s": 1.4,
                "words": [{"word": "SSN?", "start_s": 0.5, "end_s": 1.4}]}
    assert redaction_spans([question, first]) == [(1.4, 5.0)]  # back to the question's end, on 1 s past its own
