#!/usr/bin/env python3
"""Render the scripted demo calls in data/demo_script.yaml to audio and transcripts.

Writes, deterministically (same bytes on every run):
  data/demo/<YYYY-MM-DD>/call-NNNN.flac   stereo, 8 kHz, 16-bit FLAC (12 bits used, as on a
                                          phone line), one speaker per channel
  data/demo/metadata.csv                  file, call_id, started_at, agent_id, queue, direction, agent_channel
  data/demo_transcripts/<call_id>.json    the script as a transcript, with the exact
                                          start/end (s) of each line as placed in the audio

Needs espeak-ng and sox on PATH.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
SPEAKERS = ("agent", "customer")
CHANNELS = ("left", "right")
METADATA_COLUMNS = ["file", "call_id", "started_at", "agent_id", "queue", "direction", "agent_channel"]
# Below this (-40 dBFS) espeak-ng output is its own padding, not speech.
TRIM_LEVEL = 10 ** (-40 / 20)
# espeak-ng peaks near full scale; real telephone speech sits well below it.
SPEECH_GAIN = 0.5
OUT_RATE = 8000
RESOLUTION_BITS = 12


class ScriptError(ValueError):
    """A problem in demo_script.yaml, worded for the person editing it."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example:\n  .venv/bin/python data/make_demo.py\n"
        "  .venv/bin/python data/make_demo.py --audio-dir /tmp/demo --transcripts-dir /tmp/tr",
    )
    parser.add_argument("--script", type=Path, default=HERE / "demo_script.yaml",
                        help="scripted dialogues (default: %(default)s)")
    parser.add_argument("--audio-dir", type=Path, default=HERE / "demo",
                        help="where recordings and metadata.csv go (default: %(default)s)")
    parser.add_argument("--transcripts-dir", type=Path, default=HERE / "demo_transcripts",
                        help="where <call_id>.json transcripts go (default: %(default)s)")
    return parser.parse_args(argv)


def require_tools() -> None:
    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"make_demo.py: {' and '.join(missing)} not found; install with: apt-get install espeak-ng sox")


def load_script(path: Path) -> dict:
    script = yaml.safe_load(path.read_text(encoding="utf-8"))
    validate(script, path.name)
    return script


def validate(script: dict, name: str) -> None:
    speaker_of = script["signal_ids"]
    pii_kinds = set(script["pii_kinds"])
    ids = [call["call_id"] for call in script["calls"]]
    if len(set(ids)) != len(ids):
        raise ScriptError(f"{name}: calls: call_id values must be unique")
    for c, call in enumerate(script["calls"]):
        where = f"{name}: calls[{c}]"
        if call["agent_channel"] not in CHANNELS:
            raise ScriptError(f"{where}.agent_channel: must be left or right")
        for i, line in enumerate(call["lines"]):
            validate_line(line, f"{where}.lines[{i}]", speaker_of, pii_kinds)


def validate_line(line: dict, where: str, speaker_of: dict, pii_kinds: set) -> None:
    if line.get("speaker") not in SPEAKERS:
        raise ScriptError(f"{where}.speaker: must be agent or customer")
    if not str(line.get("text", "")).strip():
        raise ScriptError(f"{where}.text: must not be empty")
    for signal in line.get("signals", []):
        if signal not in speaker_of:
            raise ScriptError(f"{where}.signals: unknown signal id {signal!r}")
        if speaker_of[signal] != line["speaker"]:
            raise ScriptError(f"{where}.signals: {signal} is said by the {speaker_of[signal]}")
    for kind in line.get("pii", []):
        if kind not in pii_kinds:
            raise ScriptError(f"{where}.pii: unknown kind {kind!r}")


def synthesise(text: str, voice: str, wpm: int, word_gap_ms: int) -> tuple[np.ndarray, int]:
    """Speech samples in [-1, 1] with the synthesiser's silent padding cut off."""
    # Text goes in on stdin so a line can never be mistaken for an option.
    cmd = ["espeak-ng", "-v", voice, "-s", str(wpm), "-g", str(word_gap_ms // 10), "--stdin", "--stdout"]
    wav = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, check=True).stdout
    with wave.open(io.BytesIO(wav)) as reader:
        rate = reader.getframerate()
        # espeak-ng streams with a placeholder length, so read until the data runs out.
        samples = np.frombuffer(reader.readframes(2**31), dtype="<i2")
    speech = np.flatnonzero(np.abs(samples) >= TRIM_LEVEL * 32768)
    return samples[speech[0]: speech[-1] + 1].astype(np.float32) / 32768, rate


def place_lines(call: dict, script: dict) -> tuple[list[dict], int]:
    """Synthesise each line and give it a start time on a millisecond grid.

    Times are rounded first and samples placed from the rounded times, so the
    transcript's start_s is exactly where the speech begins in the file.
    """
    synth, defaults = script["synthesis"], script["defaults"]
    voices = {**synth["voices"], **call.get("voices", {})}
    cursor, placed, rate = defaults["lead_in_s"], [], None
    for i, line in enumerate(call["lines"]):
        who = line["speaker"]
        audio, rate = synthesise(line["text"], voices[who], synth["rate_wpm"][who], synth["word_gap_ms"])
        gap = line.get("gap_s", defaults["gap_s"]) if placed else 0.0
        start = round(cursor + gap, 3)
        if placed and start < placed[-1]["start_s"]:
            raise ScriptError(f"{call['call_id']} line {i}: gap_s {gap} starts it before the line it interrupts")
        end = round(start + len(audio) / rate, 3)
        placed.append({"line": line, "audio": audio, "start_s": start, "end_s": end})
        cursor = max(cursor, end)  # an interruption does not rewind the conversation
    return placed, rate


def mix_channels(call: dict, placed: list[dict], rate: int, tail_s: float) -> np.ndarray:
    """(samples, 2) int16 array with each speaker on its own channel."""
    length = int(round((max(p["end_s"] for p in placed) + tail_s) * rate))
    stereo = np.zeros((length, 2), dtype=np.float32)
    agent_col = CHANNELS.index(call["agent_channel"])
    for p in placed:
        col = agent_col if p["line"]["speaker"] == "agent" else 1 - agent_col
        first = int(round(p["start_s"] * rate))
        stereo[first: first + len(p["audio"]), col] += SPEECH_GAIN * p["audio"]
    return np.round(np.clip(stereo, -1.0, 1.0) * 32767).astype("<i2")


def to_telephone(stereo: np.ndarray, rate: int, band_hz: list[int]) -> np.ndarray:
    """Resample to 8 kHz, band-limit, and keep 12 bits of resolution."""
    raw = ["-t", "raw", "-e", "signed", "-b", "16", "-c", "2"]
    # -R and -D keep sox from seeding dither with the clock, so reruns give the same bytes.
    # sox's rate and sinc effects compensate their own delay, so line times stay exact.
    cmd = ["sox", "-R", "-D", "-V1", *raw, "-r", str(rate), "-", *raw, "-r", str(OUT_RATE), "-",
           "sinc", f"{band_hz[0]}-{band_hz[1]}"]
    out = subprocess.run(cmd, input=stereo.tobytes(), capture_output=True, check=True).stdout
    samples = np.frombuffer(out, dtype="<i2").astype(np.int32)
    # A G.711 line carries about 12-13 bits; with the low bits zero FLAC stores
    # speech in roughly half the space, which keeps the demo a few MB in git.
    step = 2 ** (16 - RESOLUTION_BITS)
    return np.clip(np.round(samples / step) * step, -32768, 32767).astype("<i2")


def write_flac(samples: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["sox", "-R", "-D", "-V1", "-t", "raw", "-e", "signed", "-b", "16", "-c", "2",
           "-r", str(OUT_RATE), "-", "-C", "8", str(path)]
    subprocess.run(cmd, input=samples.tobytes(), check=True)


def audio_path(call: dict) -> str:
    number = call["call_id"].split("-")[-1]
    return f"{call['started_at'][:10]}/call-{number}.flac"


def transcript(call: dict, placed: list[dict]) -> dict:
    keys = ("call_id", "started_at", "agent_id", "queue", "direction")
    utterances = [{"speaker": p["line"]["speaker"], "start_s": p["start_s"], "end_s": p["end_s"],
                   "text": p["line"]["text"]} for p in placed]
    return {**{k: call[k] for k in keys}, "utterances": utterances}


def write_metadata(calls: list[dict], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=METADATA_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for call in calls:
            writer.writerow({**{k: call[k] for k in METADATA_COLUMNS[1:]}, "file": audio_path(call)})


def render_call(call: dict, script: dict, audio_dir: Path, transcripts_dir: Path) -> float:
    placed, rate = place_lines(call, script)
    stereo = mix_channels(call, placed, rate, script["defaults"]["tail_s"])
    write_flac(to_telephone(stereo, rate, script["synthesis"]["band_hz"]), audio_dir / audio_path(call))
    text = json.dumps(transcript(call, placed), indent=2, ensure_ascii=False) + "\n"
    (transcripts_dir / f"{call['call_id']}.json").write_text(text, encoding="utf-8")
    return len(stereo) / rate


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_tools()
    try:
        script = load_script(args.script)
        args.audio_dir.mkdir(parents=True, exist_ok=True)
        args.transcripts_dir.mkdir(parents=True, exist_ok=True)
        total = 0.0
        for call in script["calls"]:
            seconds = render_call(call, script, args.audio_dir, args.transcripts_dir)
            total += seconds
            print(f"{call['call_id']}  {audio_path(call)}  {seconds:5.1f} s")
        write_metadata(script["calls"], args.audio_dir / "metadata.csv")
    except (ScriptError, KeyError, yaml.YAMLError) as err:
        kind = "missing key" if isinstance(err, KeyError) else "error"
        sys.exit(f"make_demo.py: {kind}: {err}")
    print(f"{len(script['calls'])} calls, {total:.1f} s of audio -> {args.audio_dir}, {args.transcripts_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
