"""What a recording's container says about its file: cut short, or still being written by a streaming recorder.

FFmpeg decodes whatever audio bytes a WAV or an Ogg file holds, so neither shows when it is read: both would be
stored as a shorter call, and a stored call's recording is never taken again. Ingest asks here first: a WAV's
header declares its size; an Ogg stream marks its last page (end of stream), which a cut file lacks.
"""
from __future__ import annotations

from pathlib import Path

# How streaming writers say "size unknown" in the RIFF and data sizes until they finish and seek back.
UNKNOWN_SIZES = (0, 0xFFFFFFFF)
OGG_PAGE_MAX = 65_307  # header (27) + 255 segment sizes + 255 x 255 bytes: the last page starts within this
OGG_END_OF_STREAM = 0x04  # header_type flag of a stream's last page


def ogg_unended(path: Path, size: int) -> bool:
    """Whether an Ogg file (Vorbis, Opus) ends without its stream's last page: cut short, or still written."""
    with open(path, "rb") as fh:
        fh.seek(max(0, size - OGG_PAGE_MAX))
        tail = fh.read()
    last = tail.rfind(b"OggS")
    return last < 0 or len(tail) < last + 6 or not tail[last + 5] & OGG_END_OF_STREAM


def _sizes(path: Path) -> tuple[int, int, int, int] | None:
    """(riff_size, data_size, offset of the data, byte_rate) of a RIFF/WAVE file with a data chunk, else None."""
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:] != b"WAVE":
            return None
        pos, byte_rate = 12, 0
        for _ in range(64):  # a WAV has a handful of chunks; stop rather than walk a corrupt file
            fh.seek(pos)
            chunk = fh.read(8)
            if len(chunk) < 8:
                return None
            kind, length = chunk[:4], int.from_bytes(chunk[4:], "little")
            if kind == b"fmt ":
                byte_rate = int.from_bytes(fh.read(12)[8:12], "little")
            elif kind == b"data":
                return int.from_bytes(head[4:8], "little"), length, pos + 8, byte_rate
            pos += 8 + length + (length & 1)
    return None


def wav_size_unknown(path: Path) -> bool:
    """Whether a WAV's header gives its RIFF or data size as 0 or 0xFFFFFFFF: a recorder still writing it (or
    one that never fixes the header; the caller tells them apart by the file's age)."""
    sizes = _sizes(path)
    return sizes is not None and (sizes[0] in UNKNOWN_SIZES or sizes[1] in UNKNOWN_SIZES)


def wav_shortfall(path: Path, size: int) -> tuple[float, float] | None:
    """(declared_s, held_s) of a RIFF/WAVE file whose data chunk promises more than the file holds, else None.

    An unknown data size (0 or 0xFFFFFFFF) promises nothing: not a truncation (see wav_size_unknown). Up to
    0.1 s short is tolerated (sloppy writers round the size).
    """
    sizes = _sizes(path)
    if sizes is None:
        return None
    _, length, data_at, byte_rate = sizes
    held = size - data_at
    if length in UNKNOWN_SIZES or not byte_rate or held >= length - byte_rate // 10:
        return None
    return length / byte_rate, max(held, 0) / byte_rate
