"""What a recording's container says about its file: cut short, or still being written by a streaming recorder.

FFmpeg decodes whatever audio bytes a WAV, Ogg, MP3 or MP4 (M4A) file holds, so none shows when it is read: each
would be stored as a shorter call, and a stored call's recording is never taken again. Ingest asks here first: a
WAV's header declares its size; an Ogg stream marks its last page (end of stream), which a cut file lacks; an MP4
file's boxes declare their sizes; an MP3 is a chain of frames, each header giving its length, and a copy cut at a
random byte ends inside one (an MP3 without a Xing header declares no length, so a cut at a frame's edge passes).
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


def mp4_shortfall(path: Path, size: int) -> tuple[str, int] | None:
    """(box type, the bytes it declares past the file's end) of the first top-level box of an MP4/M4A file that
    runs past it (the audio's 'mdat' of a cut copy), else None. A file not opening with an 'ftyp' box is not
    judged (random bytes read as sizes would all run past the end)."""
    pos = 0
    with open(path, "rb") as fh:
        if fh.read(8)[4:] != b"ftyp":
            return None
        for _ in range(1024):  # a handful of top-level boxes; stop rather than walk a corrupt file
            fh.seek(pos)
            head = fh.read(16)
            if len(head) < 8:
                return None
            length, kind = int.from_bytes(head[:4], "big"), head[4:8].decode("latin-1")
            if length == 1 and len(head) == 16:  # a 64-bit size follows
                length = int.from_bytes(head[8:16], "big")
            if length == 0:  # "to the end of the file"
                return None
            if length < 8:
                return None  # not a box: not ours to judge
            if pos + length > size:
                return kind, pos + length - size
            pos += length
    return None


# (MPEG version bits, layer bits) -> kbit/s by bitrate index; Layer III only: what call recorders write
MP3_KBPS = {3: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),  # MPEG-1
            2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),  # MPEG-2
            0: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)}  # MPEG-2.5
MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def mp3_cut(path: Path, size: int) -> int | None:
    """The offset of an MP3's last frame when it runs past the file's end (a cut copy), else None. Frames are
    walked from the first (after an ID3v2 tag); anything that is not a Layer III frame (an ID3v1 or APE tag at
    the end, free-format bitrate) ends the walk with no judgement."""
    data = path.read_bytes()
    pos = 0
    if data[:3] == b"ID3" and len(data) >= 10:
        pos = 10 + ((data[6] & 0x7F) << 21 | (data[7] & 0x7F) << 14 | (data[8] & 0x7F) << 7 | data[9] & 0x7F)
        pos += 10 if data[5] & 0x10 else 0  # a footer
    while pos < size:
        if size - pos < 4:
            return pos if data[pos] == 0xFF else None
        length = _mp3_frame_length(data[pos:pos + 4])
        if length is None:
            return None
        if pos + length > size:
            return pos
        pos += length
    return None


def _mp3_frame_length(head: bytes) -> int | None:
    if head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    version, layer = head[1] >> 3 & 3, head[1] >> 1 & 3
    bitrate, rate, padding = head[2] >> 4, head[2] >> 2 & 3, head[2] >> 1 & 1
    if version == 1 or layer != 1 or bitrate in (0, 15) or rate == 3:
        return None
    per_frame = 144 if version == 3 else 72  # bytes per kbit/s per kHz: 1152 or 576 samples a frame
    return per_frame * MP3_KBPS[version][bitrate] * 1000 // MP3_RATES[version][rate] + padding
