"""Issue #7, bad input: a night of everything recording systems and people get wrong, in one batch.

Each bad input lands in `failures` with one line that says which file (or which metadata line) and what is
wrong; the good calls are stored once with their real rate and length; the run is `partial` and the CLI exits
1; no traceback reaches anyone; a second run adds nothing. Also: a long recording is transcribed window by
window with the times of the call (bench/long_audio.py measures the memory that saves).

Decided here: a truncated recording is a failure, not a short call. A recorder that died and a copy still
being written look the same, and once a partial call is stored the complete file is never taken (its metadata
call_id is known) or is stored twice (a new audio hash). The failure repeats every run until the file is whole
or removed. A WAV is caught at ingest (its header's data size against the file's); a FLAC, whose STREAMINFO
FFmpeg trusts, when transcription decodes less than it declares. Pure silence is a call with status
`no_speech`, not a failure.
"""
import hashlib
import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest

from conftest import JFK, JFK_TEXT, ROOT, words, write_wav
from pipeline.store import Store

CALLINTEL = str(Path(sys.executable).with_name("callintel"))
JFK_S = 11.0

# file -> (call_id, sample rate, channels, leading silence s): the good calls, one per telephone-to-studio rate.
GOOD = {"rates/8k.wav": ("g-8k", 8000, 2, 0.0), "rates/16k.wav": ("g-16k", 16000, 1, 0.5),
        "rates/44k.wav": ("g-44k", 44100, 1, 1.0), "rates/48k.wav": ("g-48k", 48000, 2, 1.5)}
SILENCE_S = 20.0

# source_path -> (stage, words the one-line error must hold). Every error also names the file or the
# metadata line that describes it, and the bad file is not stored.
EXPECTED = {
    "bad/empty.wav": ("ingest", ["bad/empty.wav", "empty file (0 bytes)"]),
    "bad/noise.wav": ("ingest", ["bad/noise.wav", "cannot decode audio"]),
    "bad/notes.mp3": ("ingest", ["bad/notes.mp3", "cannot decode audio"]),
    "bad/truncated.wav": ("ingest", ["bad/truncated.wav", "truncated WAV", "declares 11.0 s", "ends after 3.7 s"]),
    "bad/cut.flac": ("transcribe", ["bad/cut.flac", "truncated or damaged audio", "decoded 3.4 s of the 11.0 s"]),
    "link.wav": ("ingest", ["link.wav", "symbolic link", "outside the input folder", "not read"]),
    "missing.wav": ("ingest", ["metadata.csv line 7", "'missing.wav' not found"]),
    "held/badtime.wav": ("ingest", ["metadata.csv line 8", "started_at 'last tuesday'", "not an ISO-8601"]),
    "held/dup.wav": ("ingest", ["metadata.csv line 9", "duplicate call_id 'g-8k'", "first on line 2"]),
    "../../etc/passwd": ("ingest", ["metadata.csv line 10", "'../../etc/passwd' is outside the input folder"]),
    "/etc/passwd": ("ingest", ["metadata.csv line 11", "'/etc/passwd' is outside the input folder"]),
    "held/unsafe.wav": ("ingest", ["metadata.csv line 12", "call_id '../../../pwned'", "must not contain /"]),
    "broken.json": ("ingest", ["broken.json", "not valid JSON", "line 1 column"]),
    "nofields.json": ("ingest", ["nofields.json: started_at: required; also utterances: required"]),
    "types.json": ("ingest", ["types.json", "utterances[0].start_s", "must be a number (it is 'soon')"]),
    "infinite.json": ("ingest", ["infinite.json", "utterances[0].end_s", "finite number"]),
    "deep.json": ("ingest", ["deep.json", "nested too deeply"]),
    "badid.json": ("ingest", ["badid.json", "call_id", "must not contain /"]),
    # Latin-1 names and JSON text that is not Unicode used to stop the whole night (no table stores them)
    "bad/caf\\xe9.wav": ("ingest", ["bad/caf\\xe9.wav", "file name is not UTF-8", "rename the file"]),
    "old\\xe9.json": ("ingest", ["old\\xe9.json", "file name is not UTF-8", "rename the file"]),
    "surrogate.json": ("ingest", ["surrogate.json", "unpaired surrogate", "not text"]),
    # a typo'd year would be the store's newest day for decades, and topics and trends would follow it
    "held/future.wav": ("ingest", ["metadata.csv line 13", "started_at '2062-11-20T10:00:00'", "in the future"]),
    "future.json": ("ingest", ["future.json", "started_at", "'2062-11-20T10:00:00'", "in the future"]),
}


def write_silence(path: Path, rate: int, seconds: float, channels: int) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\0\0" * channels * int(rate * seconds))
    return path


def write_flac(path: Path, source: Path, rate: int) -> Path:
    """source as 16-bit mono FLAC at rate (FLAC's STREAMINFO then holds the exact length)."""
    with av.open(str(source)) as src, av.open(str(path), "w", format="flac") as out:
        stream = out.add_stream("flac", rate=rate, layout="mono")
        stream.codec_context.format = "s16"
        convert = av.audio.resampler.AudioResampler(format="s16", layout="mono", rate=rate)
        for frame in [*src.decode(audio=0), None]:
            for packet in (p for f in convert.resample(frame) for p in stream.encode(f)):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def bad_night(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(recordings, transcripts, the recording a symlink points at) in tmp_path."""
    rec = tmp_path / "rec"
    for sub in ("rates", "bad", "held"):
        (rec / sub).mkdir(parents=True)
    meta = ["file,call_id,started_at,agent_id"]
    for name, (call_id, rate, channels, offset) in GOOD.items():
        write_wav(rec / name, JFK, rate=rate, channels=channels, offset_s=offset)
        meta.append(f"{name},{call_id},2026-11-09T10:00:00,a_1")
    write_silence(rec / "silence.wav", 8000, SILENCE_S, 2)
    meta.append("silence.wav,g-silence,2026-11-09T11:00:00,a_1")

    (rec / "bad/empty.wav").write_bytes(b"")
    (rec / "bad/noise.wav").write_bytes(np.random.default_rng(7).bytes(8192))
    (rec / "bad/notes.mp3").write_text("Call back Mrs Carter on Tuesday about the refund.\n" * 50)
    whole = write_wav(tmp_path / "whole16k.wav", JFK, rate=16000, channels=1).read_bytes()
    (rec / "bad/truncated.wav").write_bytes(whole[:len(whole) // 3])  # header says 11 s; a third is there
    flac = write_flac(tmp_path / "whole.flac", JFK, 16000).read_bytes()
    (rec / "bad/cut.flac").write_bytes(flac[:len(flac) // 3])

    outside = tmp_path / "outside"
    outside.mkdir()
    secret = write_wav(outside / "secret.wav", JFK, rate=8000, channels=1, offset_s=3.0)
    os.symlink(secret, rec / "link.wav")

    # Good audio whose metadata row is wrong: held back (a failure) rather than stored under a made-up id.
    write_wav(rec / "held/badtime.wav", JFK, rate=8000, channels=1, offset_s=2.0)
    write_wav(rec / "held/dup.wav", JFK, rate=8000, channels=1, offset_s=2.5)
    write_wav(rec / "held/unsafe.wav", JFK, rate=8000, channels=1, offset_s=3.5)
    write_wav(rec / "held/future.wav", JFK, rate=8000, channels=1, offset_s=4.5)
    meta += ["missing.wav,m-1,2026-11-09T10:00:00,a_1",           # line 7
             "held/badtime.wav,h-1,last tuesday,a_1",            # line 8
             "held/dup.wav,g-8k,2026-11-09T10:00:00,a_1",         # line 9
             "../../etc/passwd,p-1,,",                            # line 10
             "/etc/passwd,p-2,,",                                 # line 11
             "held/unsafe.wav,../../../pwned,2026-11-09T10:00:00,",  # line 12
             "held/future.wav,h-2,2062-11-20T10:00:00,a_1"]          # line 13
    (rec / "metadata.csv").write_text("\n".join(meta) + "\n")

    tx = tmp_path / "tx"
    tx.mkdir()
    good = {"call_id": "t-1", "started_at": "2026-11-10T11:00:00", "utterances": [
        {"speaker": "agent", "start_s": 0.5, "end_s": 2.0, "text": "Thanks for calling, this is Sam."},
        {"speaker": "customer", "start_s": 2.4, "end_s": 4.0, "text": "Hi, my app keeps crashing."}]}
    (tx / "t-1.json").write_text(json.dumps(good))
    (tx / "broken.json").write_text('{"call_id": "t-2", "utterances": [')
    (tx / "nofields.json").write_text(json.dumps({"call_id": "t-3"}))
    (tx / "types.json").write_text(json.dumps({**good, "call_id": "t-4", "utterances": [
        {"speaker": "agent", "start_s": "soon", "end_s": 2, "text": "hello"}]}))
    (tx / "infinite.json").write_text(json.dumps({**good, "call_id": "t-5", "utterances": [
        {"speaker": "agent", "start_s": 0, "end_s": float("inf"), "text": "hello"}]}))  # json writes Infinity
    (tx / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (tx / "badid.json").write_text(json.dumps({**good, "call_id": "../x"}))
    write_wav(rec / "bad" / os.fsdecode(b"caf\xe9.wav"), JFK, rate=8000, channels=1, offset_s=4.0)
    (tx / os.fsdecode(b"old\xe9.json")).write_text(json.dumps({**good, "call_id": "t-latin1"}))
    (tx / "surrogate.json").write_text(json.dumps({**good, "call_id": "t-7", "utterances": [
        {"speaker": "agent", "start_s": 0, "end_s": 1, "text": "hello \ud800 there"}]}))  # json writes \ud800
    (tx / "future.json").write_text(json.dumps({**good, "call_id": "t-8", "started_at": "2062-11-20T10:00:00"}))
    (tx / "bom.json").write_bytes(b"\xef\xbb\xbf" + json.dumps({**good, "call_id": "t-bom"}).encode())  # Windows
    return rec, tx, secret


def assert_failures_are_one_clear_line_each(failures: list[dict]) -> None:
    assert sorted((f["source_path"], f["stage"]) for f in failures) == sorted(
        (path, stage) for path, (stage, _) in EXPECTED.items())
    for f in failures:
        error = f["error"]
        assert "\n" not in error and "Traceback" not in error, error
        assert all(key in error for key in EXPECTED[f["source_path"]][1]), error


def test_a_night_of_bad_inputs_fails_each_alone_and_stores_the_rest_once(tmp_path, prefect_harness):
    from prefect.settings import PREFECT_API_URL

    import flows

    rec, tx, secret = bad_night(tmp_path)
    out = tmp_path / "out"
    first = flows.nightly(input=str(rec), transcripts_dir=str(tx), out=str(out), signals=str(ROOT / "signals"),
                          workers=2, progress=False)
    assert first["status"] == "partial"
    assert_failures_are_one_clear_line_each(first["failures"])
    counts = first["counts"]
    assert (counts["found"], counts["skipped"], counts["transcribed"], counts["imported"], counts["failed"]) == (
        16 + 11, 0, 5, 2, len(EXPECTED))
    summary_file = Path(first["summary_path"]).read_text()
    assert "Traceback" not in summary_file and "Traceback" not in json.dumps(first, default=str)

    store = Store(out)
    calls = store.read("calls").to_pandas().set_index("call_id")
    assert sorted(calls.index) == sorted([c for c, *_ in GOOD.values()] + ["g-silence", "t-1", "t-bom"])
    for name, (call_id, rate, channels, offset) in GOOD.items():
        call = calls.loc[call_id]
        assert (call.source_path, call.sample_rate, call.channels, call.status) == (name, rate, channels, "ok")
        assert call.duration_s == pytest.approx(JFK_S + offset, abs=0.01)
    silent = calls.loc["g-silence"]
    assert (silent.status, silent.sample_rate, silent.channels) == ("no_speech", 8000, 2)
    assert silent.duration_s == pytest.approx(SILENCE_S, abs=0.01)
    # The symlink's target was not read: nothing with its audio was stored, and no id refers to it.
    assert hashlib.sha256(secret.read_bytes()).hexdigest() not in set(calls.audio_sha256)

    utts = store.read("utterances").to_pandas()
    assert "g-silence" not in set(utts.call_id)
    for call_id, *_ in GOOD.values():
        heard = words(" ".join(utts.loc[utts.call_id == call_id, "text"]))
        assert "ask not what your country can do for you" in " ".join(heard), (call_id, heard)
    # A call_id from an input never names a file outside the output folder.
    assert [p for p in tmp_path.rglob("*.html") if out not in p.parents] == []
    with store.connect_read_only() as con:
        stored = con.execute("SELECT source_path, stage, error FROM failures").fetchall()
        assert con.execute("SELECT status FROM runs").fetchall() == [("partial",)]
    assert_failures_are_one_clear_line_each([{"source_path": p, "stage": s, "error": e} for p, s, e in stored])
    before = store.manifest()

    # The same night again, through the command line: nothing added, the same failures, exit 1, no traceback.
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}  # the harness's server: no 15 s start-up
    cli = subprocess.run([CALLINTEL, "run", "--input", str(rec), "--transcripts", str(tx), "--out", str(out),
                          "--signals", str(ROOT / "signals"), "--workers", "1", "--quiet"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert cli.returncode == 1, cli.stderr[-2000:]
    assert "Traceback" not in cli.stdout + cli.stderr
    assert "bad/empty.wav [ingest]: empty file (0 bytes)" in cli.stdout  # the file named once
    assert f"... and {len(EXPECTED) - 20} more: callintel sql \"SELECT source_path, error FROM failures" in cli.stdout
    after = store.manifest()
    for table in ("calls", "utterances", "signal_hits", "scorecards"):
        assert after[table] == before[table], table
    with store.connect_read_only() as con:
        runs = con.execute("SELECT status, transcribed, imported, skipped, failed FROM runs "
                           "ORDER BY started_at, run_id").fetchall()
    assert runs == [("partial", 5, 2, 0, len(EXPECTED)), ("partial", 0, 0, 7, len(EXPECTED))]
    assert len(list((out / "runs").glob("*.json"))) == 2


# ---- very long recordings --------------------------------------------------------------------------------

LONG_S = 25 * 60
SAID_AT = [20, 295, 590, 1000, 1420]  # 295 s straddles where the first 300 s window would end


def test_a_long_recording_is_transcribed_window_by_window_in_call_time(tmp_path):
    """25 minutes, JFK said 5 times: windows end at pauses, so each saying is heard once, at its own time."""
    from faster_whisper import decode_audio

    from pipeline.ingest import plan_recordings
    from pipeline.transcribe import (CONTEXT_S, SAMPLE_RATE, SEARCH_S, WINDOW_S, AsrOptions, Transcriber,
                                     stream_audio, windows)

    rate = 8000
    speech = decode_audio(str(JFK), sampling_rate=rate)
    audio = np.zeros(LONG_S * rate, np.float32)
    for start in SAID_AT:
        audio[start * rate:start * rate + len(speech)] = speech
    with wave.open(str(tmp_path / "long.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())

    # (seam, seconds from it on, lead-in) of each window: all but the first start CONTEXT_S before their seam
    spans = [((first + lead) / SAMPLE_RATE, (len(w) - lead) / SAMPLE_RATE, lead / SAMPLE_RATE)
             for first, lead, w in windows(stream_audio(tmp_path / "long.wav", None))]
    assert sum(length for _, length, _ in spans) == pytest.approx(LONG_S) and len(spans) == 7
    assert [lead for *_, lead in spans] == [0] + [CONTEXT_S] * 6
    assert all(WINDOW_S - SEARCH_S <= length + lead <= WINDOW_S for _, length, lead in spans[:-1])
    assert not [s for s, *_ in spans for t in SAID_AT if t - 0.3 < s < t + JFK_S + 0.3]  # no seam cuts a word

    nothing = pd.DataFrame({"call_id": [], "source_path": [], "file_size": [], "file_mtime": []})
    with Transcriber(AsrOptions(), workers=1, progress=False) as tr:
        (result,) = tr.run(plan_recordings(tmp_path, nothing, "left").jobs)
    assert result.error is None and result.duration_s == LONG_S
    said = words(JFK_TEXT)
    heard = [w for u in result.utterances for w in u["words"]]
    tail = None  # when the last 15 words of a saying end, from its start (as heard the first time)
    for start in SAID_AT:
        here = [w for w in heard if start - 0.5 <= w["start_s"] and w["end_s"] <= start + JFK_S + 0.5]
        text = words(" ".join(w["word"] for w in here))
        # Every saying ends "... what your country can do for you, ask what you can do for your country", in
        # call time. tiny.en may miss its first words ("And so my fellow Americans ask not") depending on where
        # the speech starts in the audio it is given: whole-file decoding of this recording does the same.
        assert text[-15:] == said[-15:] and len(text) <= len(said), (start, text)
        times = [w["end_s"] - start for w in here if words(w["word"])][-15:]
        tail = tail or times
        assert times == pytest.approx(tail, abs=0.5), start
    # Nothing heard twice at a seam, nothing invented in 23 minutes of silence.
    assert all(any(t - 0.5 <= w["start_s"] <= t + JFK_S for t in SAID_AT) for w in heard)


def test_metadata_parquet_with_nulls_reads_like_csv_with_empty_cells(tmp_path):
    """Nulls in metadata.parquet are empty cells: the id comes from the audio, the date from the file."""
    from pipeline.ingest import plan_recordings, sha256

    write_wav(tmp_path / "a.wav", JFK, rate=8000, channels=1)
    write_wav(tmp_path / "b.wav", JFK, rate=8000, channels=1, offset_s=1.0)
    pd.DataFrame({"file": ["a.wav", "b.wav", None], "call_id": [None, "c-2", "c-3"],
                  "started_at": pd.to_datetime([None, "2026-11-09T10:00:00", None]),
                  "agent_id": ["a_1", None, None]}).to_parquet(tmp_path / "metadata.parquet")
    nothing = pd.DataFrame({"call_id": [], "source_path": [], "file_size": [], "file_mtime": []})
    plan = plan_recordings(tmp_path, nothing, "left")
    a, b = plan.jobs
    assert (a.call_id, a.agent_id, b.call_id, b.agent_id, str(b.started_at)) == (
        sha256(tmp_path / "a.wav")[:16], "a_1", "c-2", None, "2026-11-09 10:00:00")
    assert [f["error"] for f in plan.failures] == [
        "metadata.parquet line 4: file is empty; it names the recording the row describes"]
