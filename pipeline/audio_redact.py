"""A redacted copy of a recording: every span the text redaction took out is silenced in the audio.

The spans come from the redacted words: redact.redact_utterances merges the words of a card number, an SSN, a
date of birth ... into one placeholder word ("[CARD]") whose start_s/end_s cover them. Those times are the
call's own (the transcriber decodes from the first sample and never drops time), so a time t is sample
round(t * rate) of the recording at its own rate. Whisper's word times are good to ~0.2 s; `margin_s` widens
each span on both sides.

Every channel is silenced over every span: the speaker's channel carries the digits, and the other channel can
carry them too as echo or cross-talk. The copy is FLAC (lossless) at the recording's sample rate and channel
count, so outside the spans it decodes to exactly the recording's samples (16-bit sources; others are stored
as 32-bit).

Example:
    >>> clean, _ = redact_utterances(utterances)          # pipeline.redact
    >>> redact_audio(Path("call.flac"), Path("call.redacted.flac"), clean, agent_channel="left")
    2
"""
from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

from pipeline.ingest import failure

PLACEHOLDER = re.compile(r"^\[[A-Z]+\]$")
CHANNEL_MAPS = ("left", "right", "mono")
EDGE_S = 1.0  # how far past the end (or before the start) of its turn a placeholder's silence may reach


def redaction_spans(utterances: list[dict], margin_s: float = 0.15) -> list[tuple[float, float]]:
    """(start_s, end_s) to silence, overlapping ones merged, in time order: each placeholder word widened by margin_s,
    and over the quiet beside it (see _widened)."""
    turns = sorted((u["start_s"], u["end_s"]) for u in utterances if u.get("start_s") is not None)
    spans = sorted(span for u in utterances for span in _widened(u.get("words") or [], turns, margin_s))
    merged: list[tuple[float, float]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _widened(words: list[dict], turns: list[tuple[float, float]], margin_s: float) -> list[tuple[float, float]]:
    """The spans of one turn's placeholders. Whisper times a segment's last word early: a card read to the end of a
    turn went on 1 s past its "[CARD]", and a copy silenced only there still said its last digits. So a span
    reaches the next word of its turn (what lies between is the number's own speech or quiet), or, at the turn's
    end, up to EDGE_S on, and the same way back; never into another turn that starts or ends beside it."""
    spans = []
    for i, w in enumerate(words):
        if not PLACEHOLDER.match(str(w.get("word", ""))):
            continue
        start, end = w["start_s"] - margin_s, w["end_s"] + margin_s
        before = words[i - 1]["end_s"] if i else max(
            [b for _, b in turns if b <= w["start_s"]] + [w["start_s"] - EDGE_S])
        after = words[i + 1]["start_s"] if i + 1 < len(words) else min(
            [a for a, _ in turns if a >= w["end_s"]] + [w["end_s"] + EDGE_S])
        spans.append((max(0.0, min(start, before)), max(end, after)))
    return spans


def redact_audio(source: Path, target: Path, utterances: list[dict], agent_channel: str,
                 margin_s: float = 0.15) -> int:
    """Write target (FLAC): source with every redacted span (± margin_s) silenced on all channels.

    utterances: one call's redacted utterances with their words (placeholders such as "[CARD]" mark the
    spans). agent_channel (left/right/mono) is the call's channel map; it is checked, but does not narrow the
    silencing, which covers every channel (echo). Writes only target. Returns how many spans were silenced
    (after merging overlaps); 0 still writes the copy. ValueError if the source cannot be decoded.
    """
    import av

    if agent_channel not in CHANNEL_MAPS:
        raise ValueError(f"agent_channel {agent_channel!r} must be one of {', '.join(CHANNEL_MAPS)}")
    spans = redaction_spans(utterances, margin_s)
    try:
        with av.open(str(source), metadata_errors="ignore") as recording, \
                av.open(str(target), "w", format="flac") as copy:
            audio = recording.streams.audio[0]
            rate, layout = audio.codec_context.sample_rate, audio.codec_context.layout.name
            channels = audio.codec_context.channels
            # FLAC stores integers: 8/16-bit sources as 16-bit (exact), anything else as 32-bit.
            fmt = "s16" if audio.codec_context.format.name in ("u8", "u8p", "s16", "s16p") else "s32"
            out = copy.add_stream("flac", rate=rate, layout=layout)
            out.codec_context.format = fmt
            bounds = [(math.floor(a * rate), math.ceil(b * rate)) for a, b in spans]
            pos = 0

            def emit(frame) -> None:
                """Encode one packed frame (the next samples of the recording) with the spans in it zeroed."""
                nonlocal pos
                samples = frame.to_ndarray().reshape(-1, channels)  # packed: L R L R ...
                end = pos + len(samples)
                hits = [(max(a, pos) - pos, min(b, end) - pos) for a, b in bounds if a < end and b > pos]
                if hits:
                    samples = samples.copy()
                    for a, b in hits:
                        samples[a:b] = 0
                    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format=fmt, layout=layout)
                    frame.sample_rate = rate
                frame.pts, pos = pos, end
                for packet in out.encode(frame):
                    copy.mux(packet)

            to_fmt, converted = av.audio.resampler.AudioResampler(format=fmt, layout=layout, rate=rate), False
            for decoded in recording.decode(audio=0):
                if decoded.format.name == fmt:
                    emit(decoded)
                    continue
                converted = True  # planar or another sample format: same rate and layout, so no resampling
                for frame in to_fmt.resample(decoded):
                    emit(frame)
            for frame in to_fmt.resample(None) if converted else []:  # what the converter still holds
                emit(frame)
            for packet in out.encode(None):
                copy.mux(packet)
    except (av.FFmpegError, IndexError) as exc:  # IndexError: no audio stream
        target.unlink(missing_ok=True)  # never leave a half-redacted copy behind
        raise ValueError(f"cannot decode audio: {getattr(exc, 'strerror', None) or exc or 'no audio stream'}") \
            from None
    return len(spans)


def redact_recordings(store, recordings: Path, calls: list[dict], utterances: list[dict]) -> list[dict]:
    """A copy of each transcribed recording with its redacted spans silenced, written before the call is stored."""
    by_call = {cid: list(turns) for cid, turns in itertools.groupby(utterances, key=lambda u: u["call_id"])}
    failures = []
    for call in calls:
        if call["asr_model"] == "transcript":
            continue
        try:
            store.write_audio(call, lambda tmp, c=call: redact_audio(
                Path(recordings) / c["source_path"], tmp, by_call.get(c["call_id"], []), c["agent_channel"]))
        except (ValueError, OSError) as exc:  # the call's text is redacted and stored; only the copy is missing
            failures.append(failure(call["source_path"], "redact-audio", f"no redacted copy written: {exc}"))
    return failures
