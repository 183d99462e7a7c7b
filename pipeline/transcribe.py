"""Speech to utterances with faster-whisper.

Stereo calls: each channel is transcribed on its own and labelled agent or
customer by the channel map. Whisper's segments are not turns (with VAD one
segment often spans the other speaker's reply), so we keep its word timestamps
and rebuild turns ourselves: words of both channels in time order, a new
utterance whenever the speaker changes or a pause of `pause_s` or more passes.
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from concurrent.futures.process import BrokenProcessPool
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models import asr

SAMPLE_RATE = 16_000
SEED = 0


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

    @classmethod
    def from_config(cls, cfg) -> AsrOptions:
        return cls(**cfg.model_dump())


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
    """16 kHz float32 samples of one channel (or the mono mix)."""
    from faster_whisper import decode_audio

    audio = decode_audio(str(path), sampling_rate=SAMPLE_RATE, split_stereo=channel is not None)
    return audio[channel] if channel is not None else audio


def transcribe_words(model, audio: np.ndarray, opts: AsrOptions, speaker: str) -> list[Word]:
    # Whisper falls back to sampling when a decode loops; a fixed seed per stream makes the same recording give
    # the same words in every run and on every worker (re-runs and resumed runs must agree).
    import ctranslate2

    ctranslate2.set_random_seed(SEED)
    segments, _ = model.transcribe(
        audio, beam_size=opts.beam_size, vad_filter=opts.vad_filter, word_timestamps=True,
        condition_on_previous_text=opts.condition_on_previous_text, language=opts.language,
    )
    return [
        Word(w.word.strip(), round(float(w.start), 3), round(float(w.end), 3), float(w.probability), speaker)
        for segment in segments for w in (segment.words or []) if w.word.strip()
    ]


def words_to_utterances(words: Iterable[Word], pause_s: float) -> list[dict]:
    """Merge words of all speakers in time order into turns; one turn never spans another speaker's words."""
    turns: list[list[Word]] = []
    for word in sorted(words, key=lambda w: (w.start_s, w.end_s)):
        last = turns[-1][-1] if turns else None
        if last and last.speaker == word.speaker and word.start_s - last.end_s < pause_s:
            turns[-1].append(word)
        else:
            turns.append([word])
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


# ---- worker side: one model per process, loaded once ----
_MODEL = None
_OPTS: AsrOptions | None = None


def _init_worker(opts: AsrOptions) -> None:
    global _MODEL, _OPTS
    _MODEL, _OPTS = asr.load(opts.model, opts.compute_type, opts.cpu_threads), opts


def _transcribe_stream(path: str, channel: int | None, speaker: str) -> tuple[list[Word], float]:
    try:
        audio = decode(Path(path), channel)
    except Exception as exc:  # PyAV raises many kinds for broken files
        raise ValueError(f"cannot decode audio: {getattr(exc, 'strerror', None) or exc}") from None
    if len(audio) == 0:
        raise ValueError("cannot decode audio: no samples (truncated or corrupt file)")
    return transcribe_words(_MODEL, audio, _OPTS, speaker), len(audio) / SAMPLE_RATE


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
        self._bar: tqdm | None = None

    def start_progress(self, jobs: list) -> None:
        """One bar in seconds of audio over all jobs of the night, however they are batched."""
        total = sum(j.duration_s * len(channel_plan(j.channels, j.agent_channel)) for j in jobs)
        self._bar = tqdm(total=round(total), unit="s", desc="transcribing audio",
                         disable=True if self.progress is False else None)

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
            # spawn, not fork: the parent may hold threads (Prefect, DuckDB) that fork would copy broken.
            self._pool = cf.ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=_init_worker, initargs=(self.opts,))
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
                in_flight[self._submit(str(job.path), ch, spk)] = item
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
            errors[job.call_id] = "the transcription worker crashed (out of memory?); it is retried next run"
            self._pool = None
        except Exception as exc:
            errors[job.call_id] = " ".join(str(exc).split()) or type(exc).__name__
        self._bar.update(round(job.duration_s))
        pending[job.call_id] -= 1
        if pending[job.call_id] == 0:
            if job.call_id in errors:
                yield CallTranscript(job.call_id, 0.0, [], errors[job.call_id])
            else:
                utterances = words_to_utterances(words.pop(job.call_id), self.opts.pause_s)
                yield CallTranscript(job.call_id, duration[job.call_id], utterances)
