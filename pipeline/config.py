"""`callintel.yaml`: loaded once, validated into typed objects before any work starts.

Every error names the file, the key path and what is wrong, e.g.
`callintel.yaml:4: asr.beam_size: must be >= 1` (pipeline/config_yaml.py), so an operator can fix it
without reading code.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import zoneinfo
from datetime import datetime
from pathlib import Path
from typing import Literal, get_args

from cronsim import CronSim, CronSimError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.column_names import ALIASES, METADATA, resembles
from pipeline.config_yaml import ConfigError, format_validation_error, read_yaml, yaml_line

DEFAULT_CONFIG_NAME = "callintel.yaml"
DOCS = 'README.md, "Configuration"'  # every key, its default and meaning


class _Strict(BaseModel):
    # Unknown keys are typos far more often than intent: reject them.
    model_config = ConfigDict(extra="forbid", frozen=True)


class AsrConfig(_Strict):
    model: str = "tiny.en"
    compute_type: Literal["int8", "int8_float32", "int16", "float32"] = "int8"
    beam_size: int = Field(5, ge=1, le=10)
    vad_filter: bool = True
    condition_on_previous_text: bool = False
    language: str | None = "en"
    # Whisper segments straddle the other speaker's reply; we cut turns at word gaps instead.
    pause_s: float = Field(0.8, gt=0, le=10)
    cpu_threads: int = Field(1, ge=0, le=64)
    # A custom vocabulary: names and phrases the calls say that Whisper may not know ("Skyline Mobile", "birth
    # date"), given to it as hotwords. Measure on your own calls (bench/asr.py --hotwords): on the demo it hurt WER.
    hotwords: list[str] = []

    @field_validator("hotwords")
    @classmethod
    def _hotwords(cls, value: list[str]) -> list[str]:
        words = [w.strip() for w in value]
        if not all(words):
            raise ValueError("holds an empty entry; give names or phrases, e.g. [Skyline Mobile, birth date]")
        return words


PII = Literal["card", "ssn", "bank", "pin", "phone", "email", "dob"]


class RedactionConfig(_Strict):
    # Which kinds of personal data are taken out of every stored text; card numbers should never be dropped.
    entities: list[PII] = ["card", "ssn", "bank", "pin", "phone", "email", "dob"]
    # Also write a copy of each recording with the redacted spans silenced (out/redacted_audio/); the
    # HTML scorecards then play that copy instead of the original.
    audio: bool = False


class ChannelsConfig(_Strict):
    agent: Literal["left", "right"] = "left"


class ScheduleConfig(_Strict):
    cron: str = "0 2 * * *"
    timezone: str | None = None  # the centre's zone (the cron's, and calls' days: see centre_time); None: the machine's
    # A served night an error stopped (a share not mounted yet, a disk a clean-up job frees) is tried again this
    # many times, this long apart, before the morning finds it failed; each try does only what is left.
    retries: int = Field(2, ge=0, le=10)
    retry_delay_minutes: float = Field(30, ge=0, le=24 * 60)

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        try:
            CronSim(value, datetime(2026, 1, 1))
        except (CronSimError, ValueError) as exc:
            raise ValueError(f"not a valid cron expression ({exc})") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                zoneinfo.ZoneInfo(value)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r} (use an IANA name like Europe/London)") from None
        return value


class TopicsConfig(_Strict):
    """Topic discovery over the turns no signal tagged (see README "Topics")."""
    speakers: list[Literal["agent", "customer", "unknown"]] = Field(["customer"], min_length=1)  # mono: unknown
    window_days: int = Field(28, ge=1, le=366)    # the model is fitted on this many days up to the newest call
    refit_days: int = Field(7, ge=1, le=366)      # refit when the newest call is this much newer than the fit
    representation: Literal["embedding", "tfidf"] = "embedding"
    min_topic_size: int = Field(3, ge=2, le=1000)


class FileNamesConfig(_Strict):
    """What a recorder writes in a recording's name, for a recorder that writes no metadata.csv (README "Inputs")."""
    pattern: str  # a regular expression searched in each recording's path under the input folder
    started_at_format: str | None = None  # a strptime format for the started_at group (None: ISO-8601)

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            groups = re.compile(value).groupindex
        except re.error as exc:
            raise ValueError(f"not a regular expression ({exc})") from None
        if not groups:
            raise ValueError("names no group: write (?P<call_id>...) around each value a name holds")
        for group in groups:  # any other group is kept in calls.extra, so a misspelt one would be lost silently
            if group != "file" and (meant := resembles(group, METADATA - {"file"}, ALIASES)):
                raise ValueError(f"group {group!r} is not one callintel reads; did you mean (?P<{meant}>...)?")
        if not {"call_id", "started_at"} & groups.keys():
            raise ValueError("names neither a call_id nor a started_at group, so a recording's name tells nothing "
                             "of its call: write (?P<call_id>...) or (?P<started_at>...) around them")
        return value

    @field_validator("started_at_format")
    @classmethod
    def _format(cls, value: str | None, info) -> str | None:
        if value is not None and "started_at" not in re.compile(info.data.get("pattern", "")).groupindex:
            raise ValueError("the pattern has no (?P<started_at>...) group for it to read")
        return value


class RunnerConfig(_Strict):
    kind: Literal["local", "dask"] = "local"
    workers: int | None = Field(None, ge=1, le=256)  # None: one per CPU core
    address: str | None = Field(None, pattern=r"^(tcp|tls|ucx|inproc)://\S+$")  # an existing Dask scheduler

    @model_validator(mode="after")
    def _address_for_dask(self):
        if self.address and self.kind != "dask":  # else the run quietly ran on this machine's processes
            raise ValueError("address only goes with kind: dask (the local runner uses this machine's processes)")
        return self


class Config(_Strict):
    input: Path = Path("data/demo")
    transcripts: Path | None = None
    out: Path = Path("data/out")
    signals: Path = Path("signals")
    # A commit is the unit a killed run can lose; small enough to lose little, big enough for few files.
    commit_every: int = Field(25, ge=1, le=10_000)
    # Imported transcripts cost ~1/1000 of transcribing per call: losing 5000 to a kill costs a few seconds
    # on two cores, while commits of 500 wrote twice the part files and took 2x the writing time.
    import_commit_every: int = Field(5000, ge=1, le=100_000)
    # A WAV whose header gives no size (0 or 0xFFFFFFFF: a streaming recorder's placeholder) is left until it has
    # not changed for this long, so a call still being recorded is not stored half-length for good.
    unsized_wav_settle_minutes: float = Field(10, gt=0, le=1440)
    # How the centre's transcript exports name the speakers, when not agent/customer: {"spk_0": "agent"}.
    transcript_speakers: dict[str, Literal["agent", "customer", "unknown"]] = {}
    file_names: FileNamesConfig | None = None
    asr: AsrConfig = AsrConfig()
    channels: ChannelsConfig = ChannelsConfig()
    redaction: RedactionConfig = RedactionConfig()
    topics: TopicsConfig = TopicsConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    runner: RunnerConfig = RunnerConfig()
    source: str = Field("callintel.yaml (none in this folder, so the defaults)", exclude=True)
    overridden: frozenset[str] = Field(frozenset(), exclude=True)  # settings given on the command line

    @field_validator("input", "transcripts", "out", "signals")
    @classmethod
    def _path(cls, value: Path | None) -> Path | None:
        if value is not None and "\x00" in str(value):  # no file system takes one: resolve() raised on it
            raise ValueError("holds a NUL character, which no folder name can")
        return value

    @field_validator("transcript_speakers")
    @classmethod
    def _speaker_names(cls, names: dict[str, str]) -> dict[str, str]:
        """Names as a label is matched: stripped, in lower case (`Speaker 1` is `speaker 1`)."""
        folded = {}
        for name, side in names.items():
            if not (key := name.strip().lower()):
                raise ValueError("a speaker's name must not be blank")
            if key in folded and folded[key] != side:
                raise ValueError(f"{name!r} is named twice, as {folded[key]} and {side}")
            folded[key] = side
        return folded

    def workers(self) -> int:
        return self.runner.workers or max(1, os.cpu_count() or 1)

    def hash(self) -> str:
        """Stable hash of what affects outputs, recorded on every run."""
        payload = self.model_dump(mode="json", exclude={"runner", "schedule", "commit_every", "import_commit_every",
                                                     "unsized_wav_settle_minutes"})
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def load_config(path: str | Path | None = None) -> Config:
    """Load and validate `callintel.yaml`; relative paths resolve against its folder.

    With no path, `./callintel.yaml` is used when present, else the defaults.

    Example:
        >>> cfg = load_config("callintel.yaml")
        >>> cfg.asr.model
        'tiny.en'
    """
    if path is None:
        if not Path(DEFAULT_CONFIG_NAME).exists():
            return Config()
        path = DEFAULT_CONFIG_NAME
    path = Path(path)
    raw = read_yaml(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: (top level): must be a mapping of keys, got {type(raw).__name__}")
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(str(path), exc, Config, DOCS)) from None
    base = path.resolve().parent
    signals = (base / cfg.signals.expanduser()).resolve()
    # a file that names no signals folder, with none beside it, is left unset: the shipped library, as with no file
    chosen = {"signals": signals} if "signals" in cfg.model_fields_set or signals.is_dir() else {}
    return cfg.model_copy(update={
        # ~ as a shell reads it: `input: ~/recordings` is a home folder, not a folder named ~ beside the file
        "input": (base / cfg.input.expanduser()).resolve(),
        "transcripts": (base / cfg.transcripts.expanduser()).resolve() if cfg.transcripts else None,
        "out": (base / cfg.out.expanduser()).resolve(),
        **chosen,
        "source": str(path),
    })


def with_overrides(cfg: Config, **overrides: object) -> Config:
    """Apply command-line overrides (paths relative to the current folder); None means 'not given'."""
    given = {k: v for k, v in overrides.items() if v is not None}
    for key in ("input", "transcripts", "out", "signals"):
        if key in given:
            given[key] = Path(given[key]).expanduser().resolve()  # --out=~/x: no shell expands that ~
    if "workers" in given:
        runner = cfg.runner.model_copy(update={"workers": int(given.pop("workers"))})
        given["runner"] = runner
    return cfg.model_copy(update={**given, "overridden": cfg.overridden | given.keys()})


SHIPPED_SIGNALS = Path(__file__).resolve().parents[1] / "signals"  # the library this release ships (the demo's)


def with_shipped_signals(cfg: Config) -> Config:
    """cfg, with the shipped signal library when no signals folder was chosen (neither callintel.yaml nor
    --signals) and there is none here (beside the callintel.yaml, or in the current folder without one):
    `callintel run --input X` run outside the project folder, or a callintel.yaml of two lines, refused itself
    ("signals folder signals does not exist"). A folder chosen is never swapped: its absence is an error."""
    from_file = "source" in cfg.model_fields_set
    if "signals" in cfg.model_fields_set or "signals" in cfg.overridden or (not from_file and cfg.signals.is_dir()):
        return cfg
    return cfg.model_copy(update={"signals": SHIPPED_SIGNALS}) if SHIPPED_SIGNALS.is_dir() else cfg


def set_at(cfg: Config, *key: str) -> str:
    """`callintel.yaml:3: ` where the file sets a setting (asr, model: asr.model) the command line did not
    override, to begin an error about its value: the line a user must edit. Empty otherwise."""
    if key[0] in cfg.overridden or not (path := Path(cfg.source)).is_file():
        return ""
    line = yaml_line(path, list(key))
    return "" if line is None else f"{path}:{line}: "


PII_NAMES = {"card": "card numbers", "ssn": "social security and national insurance numbers",
             "bank": "bank account numbers and sort codes", "pin": "PINs and passcodes", "phone": "phone numbers",
             "email": "email addresses", "dob": "dates of birth"}  # each kind of PII, as a warning says it


def redaction_warning(cfg: Config) -> str | None:
    """One line when the configuration keeps some personal data in the stored text, else None.

    Not an error: a centre may have its reasons (its own redaction upstream, a test corpus), but it should not
    find out from the stored text; card numbers stored as spoken break PCI-DSS."""
    off = [kind for kind in get_args(PII) if kind not in cfg.redaction.entities]
    if not off:
        return None
    kinds = [PII_NAMES[kind] for kind in off]
    said = " and ".join([", ".join(kinds[:-1]), kinds[-1]] if len(kinds) > 1 else kinds)
    which = "is empty, so nothing is redacted" if len(off) == len(get_args(PII)) else f"leaves out {', '.join(off)}"
    pci = "; PCI-DSS forbids storing card numbers" if "card" in off else ""
    return f"WARNING: {cfg.source}: redaction.entities {which}: {said} will be stored as spoken{pci}"


def input_problem(cfg: Config) -> str | None:
    """Why a run has nothing to read (checked by `callintel run` before it starts, and by every run itself,
    since a served night reloads a config that may have changed, or finds a share unmounted), or None."""
    if cfg.transcripts and not cfg.transcripts.is_dir():
        return f"{set_at(cfg, 'transcripts')}transcripts folder {cfg.transcripts} does not exist"
    if not cfg.input.is_dir() and not cfg.transcripts:
        # said by `callintel check` too, which takes no folders: where each way of naming them goes
        where = cfg.source if Path(cfg.source).is_file() else "a callintel.yaml"
        return (f"{set_at(cfg, 'input')}input folder {cfg.input} does not exist; give `callintel run` --input DIR "
                f"(recordings) or --transcripts DIR, or set input: or transcripts: in {where}")
    return None
