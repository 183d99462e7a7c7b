"""Shared fixtures: the real tiny.en model and one Prefect test harness per session."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

# CI must be reproducible: there property tests run a fixed set of examples; locally they keep exploring.
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

# Hypothesis seeds the global `random` for each example and warns when it moves during a draw, as if a strategy
# had used it. Prefect's events client moves it from a background thread: websockets draws each keepalive ping's
# payload (every 20 s) and each reconnect delay from it. Those draws get a Random of their own.
import random  # noqa: E402

import websockets.asyncio.connection  # noqa: E402
import websockets.client  # noqa: E402

for _module in (websockets.asyncio.connection, websockets.client):
    _module.random = random.Random()

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
JFK = DATA / "jfk.flac"
JFK_TEXT = "And so my fellow Americans ask not what your country can do for you, ask what you can do for your country."


def words(text: str) -> list[str]:
    """Lower-case words without punctuation: how transcripts are compared with their script."""
    return re.findall(r"[a-z0-9']+", text.lower())


def strings_in(value) -> Iterator[str]:
    """Every string in rows (dicts, lists), lower-cased: what a search for stored text must see, and not the
    numbers beside it (a word's probability 0.984111 holds "4111")."""
    from pipeline.redact_meta import _strings

    return (text.lower() for text in _strings(value))


def demo_transcripts_folder(tmp_path: Path, call_ids: list[str], config: str) -> Path:
    """tmp_path with tx/ holding these demo calls' transcripts and a callintel.yaml reading them (plus config)."""
    tx = tmp_path / "tx"
    tx.mkdir()
    for call_id in call_ids:
        shutil.copy(ROOT / f"data/demo_transcripts/{call_id}.json", tx)
    paths = f"input: {tmp_path / 'none'}\ntranscripts: {tx}\nout: {tmp_path / 'out'}\nsignals: {ROOT / 'signals'}\n"
    (tmp_path / "callintel.yaml").write_text(paths + config)
    return tmp_path


def write_wav(path: Path, source: Path, rate: int, channels: int, offset_s: float = 0.0) -> Path:
    """A 16-bit WAV of source's speech at another rate/channel count (channels=2: speech left, silence right)."""
    import wave

    import numpy as np
    from faster_whisper import decode_audio

    mono = decode_audio(str(source), sampling_rate=rate)
    mono = np.concatenate([np.zeros(int(offset_s * rate), np.float32), mono])
    pcm = (np.clip(mono, -1, 1) * 32767).astype("<i2")
    if channels == 2:
        pcm = np.stack([pcm, np.zeros_like(pcm)], axis=1)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return path


@pytest.fixture(scope="session")
def whisper():
    from models import asr

    return asr.load("tiny.en")


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def small_disk(tmp_path):
    """A folder on a file system of its own (tmpfs), resized by the test: mounting one needs root."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=True)
