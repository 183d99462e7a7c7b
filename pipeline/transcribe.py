"""Speech to utterances with faster-whisper.

Stereo calls: each channel is transcribed on its own and labelled agent or
customer by the channel map. Whisper's segments are not turns (with VAD one
segment often spans the other speaker's reply), so we keep its word timestamps
and rebuild turns ourselves: words of both channels in time order, a new
utterance whenever the speaker changes or a pause of `pause_s` or more passes.

Long calls in bounded memory: a channel is decoded block by block and transcribed in windows of at most
`WINDOW_S` seconds. Whole-file decoding held the hour as 16 kHz float32 (230 MB a channel, more while
converting), and Whisper's VAD and log-mel features over it multiplied that: a worker peaked at 2.6 GB on a
60-minute call, against 0.6 GB windowed, whatever the length (bench/long_audio.py). A window ends in the
middle of the longest pause of its last `SEARCH_S` seconds (Silero VAD; the quietest 0.2 s if nobody pauses),
so no word straddles a seam. Each window after the first also starts `CONTEXT_S` before its seam and keeps
only the words from the seam on: a transcription's first seconds are where tiny.en is most fragile (on the
demo calls played for 20 and 60 minutes, windows without a lead-in cost 1.2 and 2.4 points of WER against the
whole file; with it 0.3 and 0.6, for ~10% more time on long calls only). Word times are offset by where the
window starts. A recording shorter than one window is one window: exactly what the whole file gave before.
"""
from __future__ import annotations

import concurrent.futures as cf
from concurrent.futures.process import BrokenProcessPool
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models import asr
from pipeline.parallel import process_pool
from pipeline.progress import bar

SAMPLE_RATE = 16_000
SEED = 0
WINDOW_S = 300.0       # longest audio held and transcribed at once (bench/long_audio.py: memory, WER)
SEARCH_S = 60.0        # a window ends at a pause in its last minute
CONTEXT_S = 30.0       # and the next one starts this much earlier (one Whisper chunk), its words dropped
MIN_PAUSE_S = 0.3      # a pause shorter than this is not a seam
LOSSLESS = {"flac", "wav"}  # containers whose declared length is exact, so a shortfall means a damaged file


@dataclass(frozen=True)
class AsrOptions:
    model: str = "tiny.en"
    compute_type: str = "int8"
    beam_size: int = 5
    vad_filter: bool = True
    condition_on_previous_text: bool = False
    language: str | None = "en"
    pause_s: float = 0.8
    cpu_threads: int = 1
    hotwords: str | None = None  # faster-whisper's own form: the vocabulary as one comma-separated string

    @classmethod
    def from_config(cls, cfg) -> AsrOptions:
        settings = cfg.model_dump()
        return cls(**settings | {"hotwords": ", ".join(settings["hotwords"]) or None})


@dataclass(frozen=True)
class Word:
    word: str
    start_s: float
    end_s: float
    probability: float
    speaker: str


@dataclass
class CallTranscript:
    call_id: str
    duration_s: float
    utterances: list[dict]
    error: str | None = None


def channel_plan(channels: int, agent_channel: str) -> list[tuple[int | None, str]]:
    """(channel index or None for a mono mix, speaker) for each stream to transcribe."""
    if channels < 2 or agent_channel == "mono":
        return [(None, "unknown")]
    agent = 0 if agent_channel == "left" else 1
    return [(agent, "agent"), (1 - agent, "customer")]


def decode(path: Path, channel: int | None) -> np.ndarray:
    """16 kHz float32 samples of one channel (or the mono mix), the whole file at once (tests, benchmarks)."""
    from faster_whisper import decode_audio

    audio = decode_audio(str(path), sampling_rate=SAMPLE_RATE, split_stereo=channel is not None)
    return audio[channel] if channel is not None else audio


def stream_audio(path: Path, channel: int | None, name: str | None = None) -> Iterator[np.ndarray]:
    """decode() in blocks of about a minute: the same samples in order, never the whole file in memory.

    ValueError for a file that cannot be decoded, or (FLAC, WAV) that decodes to less than it declares; the
    message names the file (`name`, else the file name) and says what is wrong.
    """
    import gc

    import av
    # The very frame pipeline of faster_whisper.decode_audio, so the samples are identical to decode()'s.
    from faster_whisper.audio import _group_frames, _ignore_invalid_frames, _resample_frames

    where = f" in {name or path.name}"

    resampler = av.audio.resampler.AudioResampler(format="s16", layout="mono" if channel is None else "stereo",
                                                  rate=SAMPLE_RATE)
    samples, declared = 0, 0.0
    try:
        with av.open(str(path), mode="r", metadata_errors="ignore") as container:
            stream = container.streams.audio[0]
            if stream.duration and set(container.format.name.split(",")) & LOSSLESS:
                declared = float(stream.duration * stream.time_base)
            frames = _group_frames(_ignore_invalid_frames(container.decode(audio=0)), 500_000)
            for frame in _resample_frames(frames, resampler):
                pcm = frame.to_ndarray().reshape(-1)  # packed s16: stereo is interleaved L R L R
                block = (pcm if channel is None else pcm[channel::2]).astype(np.float32) / 32768.0
                samples += len(block)
                yield block
    except Exception as exc:  # noqa: BLE001 - PyAV raises many kinds for broken files; IndexError: no stream
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise ValueError(f"cannot decode audio{where}: {reason}") from None
    finally:
        del resampler
        gc.collect()  # PyAV's resampler frees its buffers only on collection (faster-whisper issue 390)
    if samples == 0:
        raise ValueError(f"cannot decode audio{where}: no samples (truncated or corrupt file)")
    got = samples / SAMPLE_RATE
    if declared and got < declared - max(0.5, 0.01 * declared):
        # FFmpeg skips what it cannot decode: a FLAC cut short, or damaged in the middle (every later word
        # would then be stored at the wrong time). Not stored; retried every run until the file is whole.
        raise ValueError(f"truncated or damaged audio{where}: decoded {got:.1f} s of the {declared:.1f} s the "
                         "file declares; not stored until it is complete")


def windows(blocks: Iterable[np.ndarray], window_s: float = WINDOW_S, search_s: float = SEARCH_S,
            context_s: float = CONTEXT_S) -> Iterator[tuple[int, int, np.ndarray]]:
    """(first sample, lead-in samples, samples) windows of at most window_s, each ending at a pause.

    A window after the first begins with `lead-in` samples of the previous one (its last context_s) and goes on
    from the seam; audio shorter than one window comes out as one window with no lead-in. Blocks are copied
    into one preallocated window (no concatenation copies); drop each window before asking for the next, so
    only one is ever held.
    """
    limit = int(window_s * SAMPLE_RATE)
    search = min(int(search_s * SAMPLE_RATE), limit // 2)  # every window keeps at least half its length
    context = min(int(context_s * SAMPLE_RATE), limit // 4)
    buf, held, first, lead = np.empty(limit, np.float32), 0, 0, 0
    for block in blocks:
        while len(block):
            if held == limit:  # full, and more audio follows: end the window at a pause in its last minute
                cut = limit - search + pause_point(buf[limit - search:])
                rest = buf[cut - context:].copy()
                yield first, lead, buf[:cut]
                first, lead, buf, held = first + cut - context, context, np.empty(limit, np.float32), len(rest)
                buf[:held] = rest
            take = min(limit - held, len(block))
            buf[held:held + take] = block[:take]
            held, block = held + take, block[take:]
    if held > lead or first == 0:
        yield first, lead, buf[:held]


def pause_point(region: np.ndarray) -> int:
    """Where in region to end a window: the middle of its longest pause, else of its quietest 0.2 s."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    speech = get_speech_timestamps(region, VadOptions(min_silence_duration_ms=int(MIN_PAUSE_S * 1000),
                                                      speech_pad_ms=0))
    edges = [0] + [x for s in speech for x in (s["start"], s["end"])] + [len(region)]
    gaps = [(b - a, a) for a, b in zip(edges[::2], edges[1::2]) if b - a >= MIN_PAUSE_S * SAMPLE_RATE]
    if gaps:
        length, first = max(gaps)  # ties: the later pause, the longer window
        return first + length // 2
    frame = SAMPLE_RATE // 5
    energy = np.square(region[:len(region) // frame * frame].reshape(-1, frame)).mean(axis=1)
    return int(np.argmin(energy)) * frame + frame // 2


def transcribe_words(model, audio: np.ndarray, opts: AsrOptions, speaker: str) -> list[Word]:
    # Whisper falls back to sampling when a decode loops; a fixed seed per stream makes the same recording give
    # the same words in every run and on every worker (re-runs and resumed runs must agree).
    # The log-mel features are numpy maths on the BLAS numpy loaded (OpenBLAS), which splits a product over its
    # threads and rounds differently with one thread than with several, on some CPUs enough to change words: a
    # Dask worker (OMP_NUM_THREADS=1) heard other words than the local pool on the same recording, and so did a
    # pool started after a Dask cluster had set that variable in its parent. One thread, whatever the machine's
    # cores or the environment: the same words on every runner, and no extra threads in a worker meant for one.
    import ctranslate2
    from threadpoolctl import threadpool_limits

    ctranslate2.set_random_seed(SEED)
    with threadpool_limits(limits=1, user_api="blas"):
        segments, _ = model.transcribe(
            audio, beam_size=opts.beam_size, vad_filter=opts.vad_filter, word_timestamps=True,
            condition_on_previous_text=opts.condition_on_previous_text, language=opts.language,
            hotwords=opts.hotwords,
        )
        return [
            Word(w.word.strip(), round(float(w.start), 3), round(float(w.end), 3), float(w.probability), speaker)
            for segment in segments for w in (segment.words or []) if w.word.strip()
        ]


def words_to_utterances(words: Iterable[Word], pause_s: float) -> list[dict]:
    """Merge words of all speakers in time order into turns, in the order they start.

    A speaker's turn ends at a pause of pause_s, or where the other speaker said a word wholly inside its gap
    (a reply: "how can" / "hello" / "I help"). Words said over each other do not end it: cross-talk stays two
    whole overlapping turns, not a word of each side in turn ("I" / "March." / "don't" / "So there is").
    """
    ordered = sorted(words, key=lambda w: (w.start_s, w.end_s))
    turns: list[list[Word]] = []
    open_turn: dict[str | None, tuple[int, int]] = {}  # speaker -> (its turn, position of its last word)
    for pos, word in enumerate(ordered):
        turn, last_pos = open_turn.get(word.speaker, (None, 0))
        if turn is None or _turn_ends(ordered, last_pos, pos, pause_s):
            turns.append([])
            turn = len(turns) - 1
        turns[turn].append(word)
        open_turn[word.speaker] = (turn, pos)
    return [
        {
            "utt_idx": i, "speaker": turn[0].speaker, "start_s": turn[0].start_s, "end_s": turn[-1].end_s,
            "text": " ".join(w.word for w in turn),
            "words": [{"word": w.word, "start_s": w.start_s, "end_s": w.end_s, "probability": w.probability}
                      for w in turn],
            "confidence": float(np.mean([w.probability for w in turn])),
        }
        for i, turn in enumerate(turns)
    ]


def _turn_ends(ordered: list[Word], last_pos: int, pos: int, pause_s: float) -> bool:
    """Whether ordered[pos] starts a new turn after its speaker's last word, ordered[last_pos]."""
    last, word = ordered[last_pos], ordered[pos]
    if word.start_s - last.end_s >= pause_s:
        return True
    return any(other.speaker != word.speaker and other.start_s >= last.end_s and other.end_s <= word.start_s
               for other in ordered[last_pos + 1:pos])


# ---- worker side: one model per process, loaded once ----
_MODEL = None
_OPTS: AsrOptions | None = None


def _init_worker(opts: AsrOptions) -> None:
    global _MODEL, _OPTS
    if _MODEL is not None and _OPTS == opts:
        return  # a Dask worker runs many calls: it loads the model once
    _MODEL, _OPTS = asr.load(opts.model, opts.compute_type, opts.cpu_threads), opts


def _transcribe_stream(path: str, channel: int | None, speaker: str, name: str | None = None,
                       window_s: float | None = None) -> tuple[list[Word], float]:
    """Words of one channel, window by window (memory stays flat however long the call), and its seconds."""
    words, end = [], 0
    for first, lead, audio in windows(stream_audio(Path(path), channel, name), window_s or WINDOW_S):
        end = first + len(audio)
        got = transcribe_words(_MODEL, audio, _OPTS, speaker)
        del audio  # before the next window is assembled
        if first:  # in call time, and only from the seam on (the lead-in was heard by the previous window)
            offset, seam = first / SAMPLE_RATE, lead / SAMPLE_RATE
            got = [Word(w.word, round(w.start_s + offset, 3), round(w.end_s + offset, 3), w.probability, w.speaker)
                   for w in got if w.start_s + w.end_s >= 2 * seam]
        words += got
    return words, end / SAMPLE_RATE


def transcribe_job(opts: AsrOptions, job) -> CallTranscript:
    """One call, transcribed in this process: what a Dask task runs (the worker keeps the model loaded)."""
    with Transcriber(opts, workers=1, progress=False) as transcriber:
        return next(iter(transcriber.run([job])))


class Transcriber:
    """A pool of worker processes, each holding the model, fed one channel of one call at a time.

    Example:
        >>> with Transcriber(AsrOptions(), workers=2) as tr:
        ...     for result in tr.run(jobs):
        ...         print(result.call_id, len(result.utterances))
    """

    def __init__(self, opts: AsrOptions, workers: int = 1, progress: bool | None = None):
        self.opts, self.workers, self.progress = opts, max(1, workers), progress
        self._pool: cf.ProcessPoolExecutor | None = None
        self._bar = None
        self._heard = 0.0  # seconds of audio transcribed so far, over every stream

    def start_progress(self, jobs: list) -> None:
        """One bar in seconds of audio over all jobs of the night, however they are batched."""
        total = sum(j.duration_s * len(channel_plan(j.channels, j.agent_channel)) for j in jobs)
        # seconds of each channel: a stereo call is heard twice, so this is twice the recordings' minutes
        self._bar = bar(round(total), "s", "transcribing channel audio", self.progress)

    def __enter__(self) -> Transcriber:
        if self.workers == 1:
            _init_worker(self.opts)  # in-process: no start-up cost, same code path
        return self

    def __exit__(self, *exc) -> None:
        if self._bar:
            self._bar.close()
        if self._pool:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def _submit(self, *args) -> cf.Future:
        if self.workers == 1:
            future: cf.Future = cf.Future()
            try:
                future.set_result(_transcribe_stream(*args))
            except Exception as exc:
                future.set_exception(exc)
            return future
        if self._pool is None:
            self._pool = process_pool(self.workers, _init_worker, (self.opts,))
        return self._pool.submit(_transcribe_stream, *args)

    def run(self, jobs: list) -> Iterator[CallTranscript]:
        """Transcribe jobs (ingest.CallJob); results come back per call as soon as all its channels are done."""
        streams = [(job, ch, spk) for job in jobs for ch, spk in channel_plan(job.channels, job.agent_channel)]
        pending = {job.call_id: len(channel_plan(job.channels, job.agent_channel)) for job in jobs}
        words: dict[str, list[Word]] = {job.call_id: [] for job in jobs}
        duration: dict[str, float] = {job.call_id: 0.0 for job in jobs}
        errors: dict[str, str] = {}
        if self._bar is None:
            self.start_progress(jobs)
        in_flight: dict[cf.Future, tuple] = {}
        queue = iter(streams)
        while True:
            # Bounded in-flight work keeps memory flat however many calls the night has.
            while len(in_flight) < self.workers * 2 and (item := next(queue, None)):
                job, ch, spk = item
                in_flight[self._submit(str(job.path), ch, spk, job.source_path)] = item
            if not in_flight:
                break
            done, _ = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
            for future in done:
                job, _, _ = in_flight.pop(future)
                yield from self._collect(future, job, words, duration, errors, pending)

    def _collect(self, future, job, words, duration, errors, pending) -> Iterator[CallTranscript]:
        try:
            stream_words, seconds = future.result()
            words[job.call_id] += stream_words
            duration[job.call_id] = max(duration[job.call_id], seconds)
        except BrokenProcessPool:
            errors[job.call_id] = (f"the transcription worker crashed on {job.source_path} (out of memory?); "
                                   "it is retried next run")
            self._pool = None
        except Exception as exc:
            errors[job.call_id] = " ".join(str(exc).split()) or type(exc).__name__
        # the bar counts whole seconds of the total's sum: rounding each stream's would drift from it
        self._heard += job.duration_s
        self._bar.update(round(self._heard) - self._bar.n)
        pending[job.call_id] -= 1
        if pending[job.call_id] == 0:
            if job.call_id in errors:
                yield CallTranscript(job.call_id, 0.0, [], errors[job.call_id])
            else:
                utterances = words_to_utterances(words.pop(job.call_id), self.opts.pause_s)
                yield CallTranscript(job.call_id, duration[job.call_id], utterances)
