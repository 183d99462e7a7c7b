"""ASR benchmark: the pipeline's transcription against calling faster-whisper directly.

Same files, same model, same decoding settings, same run. Prints wall time, x real
time, the throughput ratio (target >= 0.95 at one worker) and the WER of each
against the demo scripts, so we know the pipeline loses nothing.
`--sweep` also measures decoding settings on the 8 kHz demo calls (how the defaults were chosen).

Example:
    python bench/asr.py                 # baseline vs pipeline (1 and 2 workers)
    python bench/asr.py --sweep         # + beam size / VAD / condition-on-previous-text grid
    python bench/asr.py --hotwords "Skyline Mobile, birth date"   # + WER with this custom vocabulary
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import replace
from pathlib import Path

import ctranslate2
import jiwer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models import asr  # noqa: E402
from pipeline.ingest import plan_recordings  # noqa: E402
from pipeline.transcribe import SEED, AsrOptions, Transcriber, channel_plan, decode  # noqa: E402

DIGITS = "zero one two three four five six seven eight nine".split()


def normalise(text: str) -> list[str]:
    """Lower-case words; digits spelled one by one so '4111' and 'four one one one' compare equal."""
    text = re.sub(r"\d", lambda m: f" {DIGITS[int(m.group())]} ", text.lower())
    return re.findall(r"[a-z']+", text)


def scripts(folder: Path) -> dict[tuple[str, str], list[str]]:
    """(call_id, speaker) -> the words that speaker was scripted to say."""
    out: dict[tuple[str, str], list[str]] = {}
    for path in sorted(folder.glob("*.json")):
        doc = json.loads(path.read_text())
        for u in doc["utterances"]:
            out.setdefault((doc["call_id"], u["speaker"]), []).extend(normalise(u["text"]))
    return out


def wer(truth: dict, heard: dict) -> float:
    keys = sorted(truth)
    return jiwer.wer([" ".join(truth[k]) for k in keys], [" ".join(heard.get(k, [])) or "<none>" for k in keys])


def direct(jobs: list, opts: AsrOptions) -> tuple[float, dict]:
    """Plain faster-whisper in a loop: one model, one file channel after another (model load timed, as for ours)."""
    heard: dict = {}
    start = time.perf_counter()
    model = asr.load(opts.model, opts.compute_type, opts.cpu_threads)
    for job in jobs:
        for channel, speaker in channel_plan(job.channels, job.agent_channel):
            ctranslate2.set_random_seed(SEED)  # as the pipeline does: same fallbacks, same work
            segments, _ = model.transcribe(
                decode(job.path, channel), beam_size=opts.beam_size, vad_filter=opts.vad_filter,
                word_timestamps=True, condition_on_previous_text=opts.condition_on_previous_text,
                language=opts.language, hotwords=opts.hotwords)
            heard[(job.call_id, speaker)] = normalise(" ".join(s.text for s in segments))
    return time.perf_counter() - start, heard


def pipeline(jobs: list, opts: AsrOptions, workers: int) -> tuple[float, dict]:
    heard: dict = {}
    start = time.perf_counter()
    with Transcriber(opts, workers=workers, progress=False) as tr:
        for result in tr.run(jobs):
            for u in result.utterances:
                heard.setdefault((result.call_id, u["speaker"]), []).extend(normalise(u["text"]))
    return time.perf_counter() - start, heard


def row(name: str, seconds: float, audio_s: float, error: float, base: float | None = None) -> str:
    ratio = f"{base / seconds:6.2f}" if base else "   1.00"
    return f"{name:<44} {seconds:8.1f} {audio_s / seconds:9.1f}x {ratio:>7} {error:7.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", type=Path, default=ROOT / "data/demo", help="recordings (with metadata.csv)")
    parser.add_argument("--scripts", type=Path, default=ROOT / "data/demo_transcripts", help="their scripts")
    parser.add_argument("--limit", type=int, default=None, help="only the first N calls")
    parser.add_argument("--sweep", action="store_true", help="also measure a grid of decoding settings")
    parser.add_argument("--repeat", type=int, default=2, help="interleaved repeats; the fastest of each counts")
    parser.add_argument("--hotwords", default=None, help="a custom vocabulary (asr.hotwords, comma-separated) to "
                        "measure against none: WER and time of the pipeline on 2 workers")
    args = parser.parse_args()

    import pandas as pd
    empty = pd.DataFrame({"call_id": [], "source_path": [], "file_size": [], "file_mtime": []})
    jobs = plan_recordings(args.input, empty, "left").jobs[: args.limit]
    truth = scripts(args.scripts)
    truth = {k: v for k, v in truth.items() if k[0] in {j.call_id for j in jobs}}
    audio_s = sum(j.duration_s * len(channel_plan(j.channels, j.agent_channel)) for j in jobs)
    opts = AsrOptions()
    print(f"{len(jobs)} calls, {audio_s:.0f} s of channel audio; defaults: {opts}")
    print(f"{'':<44} {'seconds':>8} {'realtime':>10} {'ratio':>7} {'WER':>7}")
    # Interleaved in ABBA order: whatever runs later in a sequence was measured slower on this machine, so each
    # contender goes first as often as last; the fastest run of each is the least disturbed.
    contenders = {"direct": lambda: direct(jobs, opts), "1": lambda: pipeline(jobs, opts, 1),
                  "2": lambda: pipeline(jobs, opts, 2)}
    runs: dict[str, list] = {name: [] for name in contenders}
    for repeat in range(args.repeat):
        for name in (list(contenders) if repeat % 2 == 0 else reversed(list(contenders))):
            runs[name].append(contenders[name]())
    base_s, base_heard = min(runs["direct"], key=lambda r: r[0])
    print(row("faster-whisper direct (loop, 1 thread)", base_s, audio_s, wer(truth, base_heard)))
    for workers in (1, 2):
        seconds, heard = min(runs[str(workers)], key=lambda r: r[0])
        print(row(f"callintel pipeline, {workers} worker(s)", seconds, audio_s, wer(truth, heard), base_s))
    if args.sweep:
        sweep(jobs, opts, truth, audio_s, base_s)
    if args.hotwords:
        seconds, heard = pipeline(jobs, replace(opts, hotwords=args.hotwords), 2)
        print(row(f"hotwords: {args.hotwords}"[:44], seconds, audio_s, wer(truth, heard), base_s))


def sweep(jobs: list, opts: AsrOptions, truth: dict, audio_s: float, base_s: float) -> None:
    print("\ndecoding settings on 8 kHz calls (pipeline, 2 workers; ratio against the direct loop above)")
    grid = [
        ("beam 5, VAD, no condition (default)", {}),
        ("beam 1, VAD, no condition", {"beam_size": 1}),
        ("beam 5, no VAD, no condition", {"vad_filter": False}),
        ("beam 5, VAD, condition on previous", {"condition_on_previous_text": True}),
        ("beam 1, no VAD, condition (whisper-ish)", {"beam_size": 1, "vad_filter": False,
                                                     "condition_on_previous_text": True}),
    ]
    for name, change in grid:
        seconds, heard = pipeline(jobs, replace(opts, **change), 2)
        print(row(name, seconds, audio_s, wer(truth, heard), base_s))


if __name__ == "__main__":
    main()
