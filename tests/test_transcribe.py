"""Turns are rebuilt from word timestamps: split at pauses and at the other speaker's words."""
import json
import os
import shutil
import subprocess
import sys

import jiwer
import pandas as pd
import pytest

from conftest import JFK, JFK_TEXT, ROOT, words, write_wav
from pipeline.ingest import plan_recordings
from pipeline.transcribe import AsrOptions, Transcriber, Word, channel_plan, words_to_utterances


def w(text, start, end, speaker):
    return Word(text, start, end, 0.9, speaker)


def test_a_turn_never_spans_the_other_speakers_reply():
    agent = [w("how", 0.0, 0.2, "agent"), w("can", 0.25, 0.4, "agent"), w("I", 1.6, 1.7, "agent"),
             w("help", 1.75, 2.0, "agent")]
    customer = [w("hello", 0.5, 0.9, "customer")]
    utts = words_to_utterances(agent + customer, pause_s=0.8)
    assert [(u["speaker"], u["text"]) for u in utts] == [
        ("agent", "how can"), ("customer", "hello"), ("agent", "I help")]
    assert [u["utt_idx"] for u in utts] == [0, 1, 2]
    assert (utts[2]["start_s"], utts[2]["end_s"]) == (1.6, 2.0)


def test_words_said_over_each_other_stay_two_whole_turns():
    """Cross-talk (c-0004's customer cutting in on the agent): each side's words stay one turn, in start order;
    a word-by-word split made "I" / "March." / "don't" / "So there is" / "care"."""
    agent = [w("I", 7.0, 7.2, "agent"), w("don't", 7.4, 7.6, "agent"), w("care", 7.8, 8.0, "agent"),
             w("about", 8.05, 8.3, "agent"), w("my", 8.3, 8.4, "agent"), w("fee", 8.4, 8.7, "agent")]
    customer = [w("March.", 7.1, 7.5, "customer"), w("So", 7.55, 7.7, "customer"), w("there", 7.7, 7.9, "customer"),
                w("is", 7.9, 8.1, "customer")]
    utts = words_to_utterances(agent + customer, pause_s=0.8)
    assert [(u["speaker"], u["text"]) for u in utts] == [
        ("agent", "I don't care about my fee"), ("customer", "March. So there is")]
    assert [(u["start_s"], u["end_s"]) for u in utts] == [(7.0, 8.7), (7.1, 8.1)]


def test_a_pause_starts_a_new_utterance_of_the_same_speaker():
    ws = [w("yes", 0.0, 0.3, "customer"), w("please", 0.4, 0.8, "customer"), w("thanks", 1.7, 2.0, "customer")]
    assert [u["text"] for u in words_to_utterances(ws, pause_s=0.8)] == ["yes please", "thanks"]
    assert [u["text"] for u in words_to_utterances(ws, pause_s=1.0)] == ["yes please thanks"]


def test_confidence_is_the_mean_word_probability():
    ws = [Word("a", 0, 0.1, 0.5, "agent"), Word("b", 0.2, 0.3, 1.0, "agent")]
    assert words_to_utterances(ws, 0.8)[0]["confidence"] == pytest.approx(0.75)


@pytest.mark.parametrize("channels, agent, plan", [
    (2, "left", [(0, "agent"), (1, "customer")]),
    (2, "right", [(1, "agent"), (0, "customer")]),
    (2, "mono", [(None, "unknown")]),
    (1, "mono", [(None, "unknown")]),
])
def test_channel_map(channels, agent, plan):
    assert channel_plan(channels, agent) == plan


def test_stereo_call_labels_each_channel_by_the_map(tmp_path, whisper, capsys):
    """Speech on the left channel only, 8 kHz telephone rate: with the agent on the right it is the customer.
    Its progress, in a log (stderr is no terminal here), counts both channels' seconds, to the total."""
    write_wav(tmp_path / "call.wav", JFK, rate=8000, channels=2, offset_s=1.3)
    meta = "file,call_id,agent_channel\ncall.wav,c-1,right\n"
    (tmp_path / "metadata.csv").write_text(meta)
    empty = pd.DataFrame({"call_id": [], "source_path": [], "file_size": [], "file_mtime": []})
    jobs = plan_recordings(tmp_path, empty, "left").jobs
    with Transcriber(AsrOptions(), workers=1, progress=None) as tr:
        tr.start_progress(jobs)
        (result,) = tr.run(jobs)
    # 2 x 12.3 s: 25 s, where rounding each channel's seconds made 24 of 25
    assert capsys.readouterr().err.splitlines()[-1].startswith("transcribing channel audio: 25 of 25 s (100%) in ")
    assert result.error is None and result.duration_s == pytest.approx(12.3, abs=0.01)
    assert {u["speaker"] for u in result.utterances} == {"customer"}
    heard = " ".join(words(" ".join(u["text"] for u in result.utterances)))
    assert jiwer.wer(" ".join(words(JFK_TEXT)), heard) <= 1 / 22  # 8 kHz may cost tiny.en one word of 22
    assert result.utterances[0]["start_s"] > 1.0  # times are the call's, leading silence included (Whisper word times are good to ~0.2 s)


def test_a_broken_recording_fails_alone(tmp_path):
    shutil.copy(JFK, tmp_path / "good.flac")
    jobs = plan_recordings(tmp_path, pd.DataFrame({"call_id": [], "source_path": [], "file_size": [],
                                                    "file_mtime": []}), "left").jobs
    (tmp_path / "good.flac").write_bytes(b"\x00" * 100)  # broken after probing, as a truncated copy would be
    with Transcriber(AsrOptions(), workers=1, progress=False) as tr:
        (result,) = tr.run(jobs)
    assert result.error.startswith("cannot decode audio") and result.utterances == []


def test_the_same_words_whatever_thread_settings_the_process_started_with():
    """A Dask worker starts with OMP_NUM_THREADS=1 (and a LocalCluster sets it in the process that starts it); a
    local pool worker with the machine's default. On some CPUs (AMD EPYC) numpy's BLAS rounded the log-mel
    features differently with one thread, and tiny.en heard other words ("American," at 0.76 s, not 0.74 s):
    the Dask runner's tables differed from the local runner's, and a run resumed after a cluster had started
    in its process from an uninterrupted one."""
    code = ("import dataclasses, json, sys; from pipeline import transcribe as t; t._init_worker(t.AsrOptions()); "
            "print(json.dumps([dataclasses.asdict(w) for w in t._transcribe_stream(sys.argv[1], None, 'unknown')[0]]))")
    heard = {}
    for threads in ("1", "2", None):
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
        env |= {"OMP_NUM_THREADS": threads} if threads else {}
        done = subprocess.run([sys.executable, "-c", code, str(JFK)], env=env, cwd=ROOT, capture_output=True,
                              text=True, check=True)
        heard[threads] = json.loads(done.stdout.splitlines()[-1])
    assert heard["1"] == heard["2"] == heard[None]
    assert jiwer.wer(" ".join(words(JFK_TEXT)), " ".join(words(" ".join(w["word"] for w in heard[None])))) < 0.2
