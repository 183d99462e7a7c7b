"""Discovery, metadata and probing: new calls found once, bad inputs become one-line failures."""
import os
import shutil
import time
from datetime import datetime

import pandas as pd
import pytest

from conftest import JFK, write_wav
from pipeline.ingest import Resolver, discover, plan_recordings, probe, sha256
from pipeline.metadata import read_metadata

NOTHING_KNOWN = pd.DataFrame({"call_id": [], "source_path": [], "file_size": [], "file_mtime": []})


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "2026-11-09").mkdir()
    shutil.copy(JFK, tmp_path / "2026-11-09" / "a.flac")
    write_wav(tmp_path / "b.WAV", JFK, rate=8000, channels=1)
    (tmp_path / ".hidden").mkdir()
    shutil.copy(JFK, tmp_path / ".hidden" / "c.flac")
    (tmp_path / "notes.txt").write_text("not audio")
    return tmp_path


def test_discovery_is_recursive_sorted_and_skips_hidden_and_non_audio(folder):
    assert [rel for _, rel, _ in discover(folder).files] == ["2026-11-09/a.flac", "b.WAV"]


def test_probe_reads_channels_rate_and_duration():
    assert probe(JFK) == (2, 44100, 11.0)


@pytest.mark.parametrize("name, content, reason", [
    ("empty.wav", b"", r"empty file \(0 bytes\)"),
    ("noise.wav", os.urandom(4096), "cannot decode audio"),
    ("notes.mp3", b"Meeting notes: call the customer back on Tuesday.\n" * 40, "cannot decode audio"),
])
def test_bad_audio_gets_a_readable_reason(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=reason) as err:
        probe(path)
    assert "\n" not in str(err.value)


def encode(path, fmt: str = "ogg", codec: str = "vorbis", rate: int = 16000, layout: str = "stereo",
           options: dict | None = None, seconds_of_jfk: float = 11.0):
    """JFK's speech (16 kHz samples, played at `rate`) encoded by FFmpeg's own encoders in PyAV's wheels."""
    import av
    import numpy as np

    from pipeline.transcribe import decode

    pcm = decode(JFK, None)[: int(16000 * seconds_of_jfk)]
    channels = 2 if layout == "stereo" else 1
    with av.open(str(path), "w", format=fmt, options=options or {}) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.codec_context.options = {"strict": "experimental"}
        stream.layout = layout
        step = stream.codec_context.frame_size or 1024
        for i in range(0, len(pcm), step):
            frame = av.AudioFrame.from_ndarray(np.stack([pcm[i:i + step]] * channels), format="fltp", layout=layout)
            frame.sample_rate, frame.pts = rate, i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


CUT_FORMATS = {  # what call recorders and phone systems write
    "ogg-vorbis": ("call.ogg", dict(), "Ogg: the file ends without its stream's last page"),
    "mp3-8k-mono": ("call.mp3", dict(fmt="mp3", codec="libmp3lame", rate=8000, layout="mono"), "MP3: the file ends"),
    "mp3-44k-tags-no-xing": ("call.mp3", dict(fmt="mp3", codec="libmp3lame", rate=44100, options={
        "write_id3v1": "1", "write_xing": "0"}), "MP3: the file ends"),
    "m4a-aac": ("call.m4a", dict(fmt="ipod", codec="aac", layout="mono"), "MP4/M4A: its 'mdat' box runs"),
    "m4a-aac-faststart": ("call.m4a", dict(fmt="ipod", codec="aac", layout="mono", options={"movflags": "faststart"}),
                          "MP4/M4A: its 'mdat' box runs"),
}


@pytest.mark.parametrize("kind", CUT_FORMATS)
def test_a_recording_cut_short_is_refused_until_it_is_whole_not_stored_as_a_shorter_call(tmp_path, kind):
    """FFmpeg reads a cut file happily and gives the length of what is there (an M4A whose index is written last
    does not open at all): a copy that failed halfway was stored as a shorter call, scored and flagged, and the
    whole file, delivered later, never taken. Each format says it was cut its own way."""
    name, how, says = CUT_FORMATS[kind]
    whole = encode(tmp_path / name, **how)
    channels, rate, seconds = probe(whole)
    played = 11.0 * 16000 / how.get("rate", 16000)  # JFK's 11 s of samples, at the file's rate
    assert (channels, rate) == (2 if how.get("layout", "stereo") == "stereo" else 1, how.get("rate", 16000))
    assert abs(seconds - played) < 0.15
    data = whole.read_bytes()
    for keep in (len(data) // 3, len(data) // 2 + 1):
        cut = tmp_path / f"cut{keep}{whole.suffix}"
        cut.write_bytes(data[:keep])
        with pytest.raises(ValueError) as err:
            probe(cut)
        assert str(err.value).startswith(f"truncated {says}")
        assert str(err.value).endswith("(cut short, or still being written); not stored until it is complete")


def test_call_id_comes_from_metadata_else_the_audio_hash(folder):
    (folder / "metadata.csv").write_text(
        "file,call_id,started_at,agent_id,queue,agent_channel,campaign\n"
        "2026-11-09/a.flac,c-0001,2026-11-09T09:14:00,a_ruiz,billing,right,spring\n")
    plan = plan_recordings(folder, NOTHING_KNOWN, "left")
    a, b = plan.jobs
    assert (a.call_id, a.started_at, a.agent_id, a.queue, a.agent_channel, a.extra) == (
        "c-0001", datetime(2026, 11, 9, 9, 14), "a_ruiz", "billing", "right", {"campaign": "spring"})
    assert b.call_id == sha256(folder / "b.WAV")[:16] and b.agent_channel == "mono"  # one channel: no agent side
    assert plan.found == 2 and plan.skipped == 0 and plan.failures == []


def test_stored_calls_are_skipped_without_rehashing(folder):
    first = plan_recordings(folder, NOTHING_KNOWN, "left")
    known = pd.DataFrame([{"call_id": j.call_id, "source_path": j.source_path, "file_size": j.file_size,
                           "file_mtime": j.file_mtime} for j in first.jobs])
    again = plan_recordings(folder, known, "left")
    assert again.jobs == [] and again.skipped == 2


def test_the_same_audio_twice_is_stored_once(folder):
    shutil.copy(JFK, folder / "copy.flac")
    plan = plan_recordings(folder, NOTHING_KNOWN, "left")
    assert len(plan.jobs) == 2
    assert plan.failures == [{"source_path": "copy.flac", "stage": "ingest", "error": (
        "copy.flac: the same recording (byte for byte) as 2026-11-09/a.flac; not stored twice")}]


def test_copies_of_a_stored_call_arriving_together_are_that_call_not_failures(folder):
    """Two copies of a stored call's file, without metadata ids, so both get the one id their audio gives: they
    failed as each other's 'same call_id' before the stored call was looked up, every night."""
    stored = {sha256(JFK): "c-1"}
    (folder / "later").mkdir()
    for name in ("x.flac", "y.flac"):
        shutil.copy(JFK, folder / "later" / name)
    plan = plan_recordings(folder, NOTHING_KNOWN, "left",
                           stored_audio=lambda digests: {d: stored[d] for d in digests if d in stored})
    assert [j.source_path for j in plan.jobs] == ["b.WAV"] and plan.failures == []
    assert plan.skipped == 3 and [n for n in plan.notes if "c-1" in n] == [
        f"{rel}: the same recording (byte for byte) as call c-1, stored on an earlier night; not stored again as "
        f"call {sha256(JFK)[:16]}" for rel in ("2026-11-09/a.flac", "later/x.flac", "later/y.flac")]


def test_one_recording_under_two_call_ids_is_stored_once_and_the_copy_named(folder):
    """Metadata gives the copy an id of its own, so ids alone do not tell: the audio's digest does."""
    shutil.copy(JFK, folder / "copy.flac")
    (folder / "metadata.csv").write_text("file,call_id\n2026-11-09/a.flac,c-1\ncopy.flac,c-2\n")
    plan = plan_recordings(folder, NOTHING_KNOWN, "left")
    assert [job.call_id for job in plan.jobs] == ["c-1", sha256(folder / "b.WAV")[:16]]
    assert plan.failures == [{"source_path": "copy.flac", "stage": "ingest", "error": (
        "copy.flac: the same recording (byte for byte) as 2026-11-09/a.flac; not stored twice")}]


def test_since_leaves_older_calls_for_later(folder):
    (folder / "metadata.csv").write_text("file,started_at\n2026-11-09/a.flac,2026-11-09T09:00:00\n"
                                         "b.WAV,2026-11-20T09:00:00\n")
    plan = plan_recordings(folder, NOTHING_KNOWN, "left", since=datetime(2026, 11, 15).date())
    assert [j.source_path for j in plan.jobs] == ["b.WAV"] and plan.skipped == 1


def test_bad_metadata_rows_fail_alone_and_say_why(folder):
    (folder / "metadata.csv").write_text(
        "file,call_id,started_at,agent_channel\n"
        "2026-11-09/a.flac,c-1,2026-11-09T09:00:00,left\n"
        "missing.wav,c-2,,\n"
        "../../etc/passwd,c-3,,\n"
        "b.WAV,c-4,yesterday,\n"
        "b.WAV,c-1,,\n"
        "b.WAV,c-6,,centre\n"
        "b.WAV,c-7,paid with 4111 1111 1111 1111,\n")  # a notes column shifted into started_at
    metadata = read_metadata(folder)
    assert [f["error"] for f in metadata.failures] == [
        "metadata.csv line 3: file 'missing.wav' not found",
        "metadata.csv line 4: file '../../etc/passwd' is outside the input folder",
        "metadata.csv line 5: started_at 'yesterday' is not an ISO-8601 timestamp "
        "(write it as 2026-11-20T09:14:00: year first, two digits for the month, "
        "day, hour and minute)",
        "metadata.csv line 6: duplicate call_id 'c-1' (first on line 2)",
        "metadata.csv line 7: agent_channel 'centre' must be left, right or mono",
        "metadata.csv line 8: started_at 'paid with [CARD]' is not an ISO-8601 timestamp "
        "(write it as 2026-11-20T09:14:00: year first, two digits for the month, "
        "day, hour and minute)",  # stored: no card in it
    ]
    assert [r["call_id"] for r in metadata.rows.values()] == ["c-1"]


def test_unreadable_metadata_holds_the_folder_back(folder):
    (folder / "metadata.csv").write_text("name,started\nx,y\n")
    plan = plan_recordings(folder, NOTHING_KNOWN, "left")
    assert plan.jobs == []
    assert plan.failures[0]["error"] == ("metadata.csv: no 'file' column; it names each recording (the columns: name, "
                                         "started)")


def test_a_recording_still_being_written_is_left_for_a_later_run(folder):
    """Half a copy of an mp3 decodes as a shorter call: a file that grows while the run looks is not taken."""
    import threading

    growing, done = folder / "growing.mp3", threading.Event()

    def copy_slowly():
        with open(JFK, "rb") as source, open(growing, "wb") as target:
            while not done.is_set() and (chunk := source.read(4096)):
                target.write(chunk)
                target.flush()
                done.wait(0.1)

    writer = threading.Thread(target=copy_slowly)
    writer.start()
    try:
        while not growing.exists() or not growing.stat().st_size:  # listed before the copy began, it was not seen
            time.sleep(0.01)
        plan = plan_recordings(folder, NOTHING_KNOWN, "left")
    finally:
        done.set()
        writer.join()
    assert [j.source_path for j in plan.jobs] == ["2026-11-09/a.flac", "b.WAV"]  # just copied, but whole
    assert plan.notes == ["growing.mp3: still being written (it changed within 1 s); taken on a later run"]
    assert plan.failures == []


UNKNOWN = 0xFFFFFFFF


def recording(path, riff_size, data_size, halves, age_s):
    """A stereo 8 kHz 16-bit WAV of JFK (11.0 s) as a streaming recorder leaves it: the header's sizes as given
    (None: the true one), holding the first half of the audio (halves=1) or all of it (2), modified age_s ago."""
    whole = write_wav(path.with_suffix(".tmp"), JFK, rate=8000, channels=2).read_bytes()
    path.with_suffix(".tmp").unlink()
    head, pcm = bytearray(whole[:44]), whole[44:]
    assert head[36:40] == b"data"
    head[4:8] = (len(whole) - 8 if riff_size is None else riff_size).to_bytes(4, "little")
    head[40:44] = (len(pcm) if data_size is None else data_size).to_bytes(4, "little")
    path.write_bytes(bytes(head) + pcm[:len(pcm) // 8 * 4] if halves == 1 else bytes(head) + pcm)
    os.utime(path, (time.time() - age_s, time.time() - age_s))


@pytest.mark.parametrize("riff_size, data_size", [(UNKNOWN, UNKNOWN), (0, 0), (None, UNKNOWN), (UNKNOWN, None)])
def test_a_wav_still_being_recorded_is_stored_whole_once_it_has_not_changed_for_the_settle_time(
        tmp_path, riff_size, data_size):
    """A recorder writes RIFF and data sizes of 0xFFFFFFFF (or 0) until the call ends; FFmpeg reads such a file
    to its end, so half a call was stored as a whole one and the full recording never replaced it."""
    path = tmp_path / "live.wav"
    recording(path, riff_size, data_size, halves=1, age_s=5)
    plan = plan_recordings(tmp_path, NOTHING_KNOWN, "left")
    note = ("live.wav: still being written (its WAV header gives no length yet and it changed in the last 10 min); "
            "retried next run, and taken once it has not changed for 10 min")
    assert (plan.jobs, plan.notes, plan.failures, plan.found, plan.skipped) == ([], [note], [], 1, 1)  # found adds up
    recording(path, riff_size, data_size, halves=2, age_s=9 * 60)  # the call ended; a recorder that never fixes
    assert plan_recordings(tmp_path, NOTHING_KNOWN, "left").notes == [note]  # the header: quiet for 9 min only
    os.utime(path, (time.time() - 11 * 60, time.time() - 11 * 60))
    later = plan_recordings(tmp_path, NOTHING_KNOWN, "left")
    assert [(j.source_path, j.channels, j.sample_rate, j.duration_s) for j in later.jobs] == [
        ("live.wav", 2, 8000, 11.0)]
    assert (later.notes, later.failures) == ([], [])


def test_an_old_wav_whose_header_was_never_fixed_is_read_to_its_end(tmp_path):
    recording(tmp_path / "old.wav", UNKNOWN, UNKNOWN, halves=2, age_s=3600)
    recording(tmp_path / "zeros.wav", 0, 0, halves=2, age_s=3600)
    recording(tmp_path / "recent.wav", UNKNOWN, UNKNOWN, halves=1, age_s=5)
    plan = plan_recordings(tmp_path, NOTHING_KNOWN, "left", unsized_settle_s=120)
    assert [(j.source_path, j.duration_s) for j in plan.jobs] == [("old.wav", 11.0), ("zeros.wav", 11.0)]
    assert plan.notes == ["recent.wav: still being written (its WAV header gives no length yet and it changed in "
                          "the last 2 min); retried next run, and taken once it has not changed for 2 min"]


def test_a_stored_recording_whose_file_changed_is_not_stored_again(folder):
    """Stored short (its copy was cut off), then the whole file arrives: not a second call under a new audio hash,
    and the run says which call to forget to store the whole one."""
    first = plan_recordings(folder, NOTHING_KNOWN, "left")
    known = pd.DataFrame([{"call_id": j.call_id, "source_path": j.source_path, "file_size": j.file_size,
                           "file_mtime": j.file_mtime} for j in first.jobs])
    b = next(j for j in first.jobs if j.source_path == "b.WAV")
    write_wav(folder / "b.WAV", JFK, rate=16000, channels=1)  # the same name, now other bytes
    again = plan_recordings(folder, known, "left")
    assert again.jobs == [] and again.skipped == 2
    assert again.notes == [f"b.WAV: changed since it was stored as call {b.call_id} on an earlier night (its size "
                           f"or time differ); the stored call was kept; if that one is incomplete, `callintel "
                           f"forget --call-id {b.call_id} --yes` and the next run stores this file"]


def test_channels_beyond_two_are_named_not_silently_dropped(folder):
    write_wav(folder / "bridge.wav", JFK, rate=8000, channels=6)
    plan = plan_recordings(folder, NOTHING_KNOWN, "left")
    assert next(j for j in plan.jobs if j.source_path == "bridge.wav").channels == 6
    assert plan.notes == ["bridge.wav: 6 channels; the first two are transcribed (agent and customer, as "
                          "channels.agent says), the others are not"]


def test_a_mono_file_whose_metadata_names_an_agent_side_is_stored_as_mono_and_said(folder):
    """One channel holds both voices: no side is the agent's, so the call is transcribed as mono; its row must say
    so, not the side the metadata claimed, and the night says why its speakers are unknown."""
    (folder / "metadata.csv").write_text("file,call_id,agent_channel\nb.WAV,c-mono,right\n")
    plan = plan_recordings(folder, NOTHING_KNOWN, "left")
    assert next(j for j in plan.jobs if j.source_path == "b.WAV").agent_channel == "mono"
    assert plan.notes == ["b.WAV: one channel, though its metadata gives the agent the right one; transcribed as "
                          "mono, every turn's speaker unknown (agent_channel: mono says so)"]


def test_the_resolver_answers_as_path_resolve_through_links_and_dots(tmp_path):
    """Resolver stands in for Path.resolve() where a night resolves every recording: it must agree on each kind."""
    rec, outside = tmp_path / "rec", tmp_path / "outside"
    (rec / "day").mkdir(parents=True)
    outside.mkdir()
    for path in (rec / "day" / "a.wav", outside / "b.wav"):
        path.write_bytes(b"x")
    os.symlink(rec / "day" / "a.wav", rec / "day" / "inside.wav")   # a link within the folder
    os.symlink(outside / "b.wav", rec / "day" / "leak.wav")          # a link out of it
    os.symlink(outside, rec / "linked")                               # a linked folder
    os.symlink(rec / "day", rec / "alias")                            # a linked folder within
    asked = [rec / "day" / "a.wav", rec / "day" / "inside.wav", rec / "day" / "leak.wav", rec / "linked" / "b.wav",
             rec / "alias" / "a.wav", rec / "day" / ".." / "day" / "a.wav", rec / "day" / "missing.wav",
             rec / "day" / "..", rec / "day" / "."]
    resolve = Resolver()
    for _ in range(2):  # the second time from its remembered folders
        assert [resolve(p) for p in asked] == [p.resolve() for p in asked]
    assert resolve(rec / "day" / "leak.wav") == (outside / "b.wav").resolve()
