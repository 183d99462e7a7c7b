"""Long recordings: peak memory of one transcription worker, windowed (the pipeline) against whole-file decoding.

Builds a 60-minute 8 kHz stereo telephone recording from the demo calls played back to back (real dialogue on
both channels), then transcribes its agent channel twice, each in a fresh process so each peak is its own:

- whole:    decode the whole channel at once (faster_whisper.decode_audio) and transcribe it in one call,
            which is what the pipeline did before windows;
- windowed: pipeline.transcribe's worker, which decodes block by block and transcribes WINDOW_S windows.

Prints peak RSS (ru_maxrss) of each worker, the RSS after loading the model (the part that does not depend on
the recording), the growth over it, the words heard and their WER against the demo scripts (the windows must
not cost accuracy), wall time, and the whole / windowed ratio.

Example:
    python bench/long_audio.py                   # 60 minutes, decode + transcription (~5 min on 2 cores)
    python bench/long_audio.py --decode-only     # decoding alone, seconds
    python bench/long_audio.py --minutes 120
"""
from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline import transcribe as tr  # noqa: E402

RATE = 8000
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def normalise(text: str) -> list[str]:
    """Lower-case words, digits spelled one by one (as bench/asr.py compares)."""
    text = re.sub(r"\d", lambda m: f" {DIGITS[int(m.group())]} ", text.lower())
    return re.findall(r"[a-z']+", text)


def make_recording(path: Path, minutes: float) -> list[str]:
    """The demo calls (8 kHz stereo) back to back until `minutes`, as one 16-bit WAV; returns the words the
    left channel's speaker was scripted to say in it (the agent, or the customer of c-0008)."""
    import av

    calls = sorted((ROOT / "data/demo").rglob("*.flac"))
    left = {r.split(",")[1]: r.split(",")[-1] != "right"  # call_id -> agent on the left
            for r in (ROOT / "data/demo/metadata.csv").read_text().splitlines()[1:]}
    need, written, truth = int(minutes * 60 * RATE), 0, []
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(RATE)
        while written < need:
            for call in calls:
                call_id = "c-" + call.stem.split("-")[1]
                start = written / RATE
                with av.open(str(call)) as container:
                    for frame in container.decode(audio=0):
                        pcm = frame.to_ndarray()  # (2, n) float planar or (1, 2n) packed
                        pcm = pcm.T if pcm.shape[0] == 2 else pcm.reshape(-1, 2)
                        if pcm.dtype != np.int16:
                            pcm = (np.clip(pcm, -1, 1) * 32767).astype("<i2")
                        pcm = pcm[:need - written]
                        out.writeframes(np.ascontiguousarray(pcm).tobytes())
                        written += len(pcm)
                speaker = "agent" if left[call_id] else "customer"
                script = json.loads((ROOT / f"data/demo_transcripts/{call_id}.json").read_text())["utterances"]
                truth += [w for u in script if u["speaker"] == speaker and start + u["end_s"] <= written / RATE
                          for w in normalise(u["text"])]
                if written >= need:
                    return truth
    return truth


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def child(mode: str, path: str, decode_only: bool) -> dict:
    """One measurement in this (fresh) process: the agent (left) channel of the recording."""
    started = time.perf_counter()
    if decode_only:
        from faster_whisper.vad import get_vad_model

        get_vad_model()  # imports and the VAD model are not the recording's: count them in the base
        base = peak_mb()
        if mode == "whole":
            seconds = len(tr.decode(Path(path), 0)) / tr.SAMPLE_RATE
        else:
            seconds = 0.0
            for _, lead, window in tr.windows(tr.stream_audio(Path(path), 0), tr.WINDOW_S):
                seconds += (len(window) - lead) / tr.SAMPLE_RATE
                del window
        words = None
    else:
        tr._init_worker(tr.AsrOptions())
        base = peak_mb()
        if mode == "whole":
            audio = tr.decode(Path(path), 0)
            seconds = len(audio) / tr.SAMPLE_RATE
            got = tr.transcribe_words(tr._MODEL, audio, tr._OPTS, "agent")
        else:
            got, seconds = tr._transcribe_stream(path, 0, "agent")
        words = " ".join(w.word for w in sorted(got, key=lambda w: w.start_s))
    return {"mode": mode, "peak_mb": peak_mb(), "base_mb": base, "audio_s": seconds, "words": words,
            "wall_s": time.perf_counter() - started}


def measure(mode: str, path: Path, decode_only: bool) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, str(path), "--window", str(tr.WINDOW_S)] + (
        ["--decode-only"] if decode_only else [])
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--decode-only", action="store_true", help="measure decoding alone, no transcription")
    parser.add_argument("--window", type=float, default=tr.WINDOW_S, help="seconds per window (default: the "
                        "pipeline's)")
    parser.add_argument("--windowed-only", action="store_true", help="skip the whole-file measurement")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    tr.WINDOW_S = args.window
    if args.child:
        print(json.dumps(child(*args.child, args.decode_only)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.wav"
        truth = " ".join(make_recording(path, args.minutes))
        seconds = path.stat().st_size / (RATE * 4)
        what = "decoding" if args.decode_only else "decoding + transcription (tiny.en, beam 5, VAD, 1 thread)"
        print(f"{seconds / 60:.0f}-minute 8 kHz stereo recording ({path.stat().st_size / 2**20:.0f} MB), agent "
              f"channel, {what}; windows of {tr.WINDOW_S:.0f} s")
        modes = ("windowed",) if args.windowed_only else ("windowed", "whole")
        rows = {mode: measure(mode, path, args.decode_only) for mode in modes}
    import jiwer

    print(f"{'mode':<9} {'peak RSS MB':>11} {'after model MB':>14} {'growth MB':>9} {'words':>6} {'WER':>6} "
          f"{'wall s':>7}")
    for mode, r in rows.items():
        heard = normalise(r["words"]) if r["words"] is not None else None
        score = f"{jiwer.wer(truth, ' '.join(heard)):.3f}" if heard else "-"
        print(f"{mode:<9} {r['peak_mb']:>11.0f} {r['base_mb']:>14.0f} {r['peak_mb'] - r['base_mb']:>9.0f} "
              f"{len(heard) if heard is not None else '-':>6} {score:>6} {r['wall_s']:>7.1f}")
    if args.windowed_only:
        return
    whole, windowed = rows["whole"], rows["windowed"]
    print(f"peak ratio whole / windowed: {whole['peak_mb'] / windowed['peak_mb']:.2f}x; growth ratio: "
          f"{(whole['peak_mb'] - whole['base_mb']) / max(windowed['peak_mb'] - windowed['base_mb'], 1):.1f}x")


if __name__ == "__main__":
    main()
