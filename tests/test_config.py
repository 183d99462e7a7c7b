"""callintel.yaml is validated before any work; errors name file, key path and problem."""
from pathlib import Path

import re

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT
from pipeline.config import Config, ConfigError, load_config, with_overrides


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "callintel.yaml"
    path.write_text(text)
    return path


def test_shipped_config_is_valid_and_matches_defaults():
    cfg = load_config(ROOT / "callintel.yaml")
    assert cfg.input == ROOT / "data/demo" and cfg.out == ROOT / "data/out"
    assert cfg.asr == Config().asr and cfg.schedule.cron == "0 2 * * *"


@pytest.mark.parametrize("text, where, message", [
    ("asr:\n  beam_size: 0\n", ":2", "asr.beam_size: must be >= 1 (it is 0)"),
    ("topics:\n  speakers: []\n", ":2", "topics.speakers: must have at least 1 (it is empty)"),
    ('out: "a\\0b"\n', ":1", "out: holds a NUL character, which no folder name can"),  # was a traceback
    ("redaction:\n  entities: [card, phones]\n", ":2", "redaction.entities[1]: must be one of 'card', 'ssn', 'bank', "
     "'pin', 'phone', 'email' or 'dob' (it is 'phones')"),
    ("asr:\n  pause_s: -1\n", ":2", "asr.pause_s: must be > 0"),
    ("asr:\n  hotwords: [Skyline Mobile, ' ']\n", ":2", "asr.hotwords: holds an empty entry; give names or phrases, "
     "e.g. [Skyline Mobile, birth date]"),
    ("asr:\n  beamsize: 5\n", ":2", "asr.beamsize: unknown key"),
    ("channels:\n  agent: middle\n", ":2", "channels.agent: must be one of 'left' or 'right'"),
    ("schedule:\n  cron: every night\n", ":2", "schedule.cron: not a valid cron expression"),
    ("# nightly\nschedule:\n\n  timezone: Mars/Olympus\n", ":4", "schedule.timezone: unknown time zone 'Mars/Olympus'"),
    ("commit_every: lots\n", ":1", "commit_every: must be a whole number (it is 'lots')"),
    ("transcript_speakers:\n  spk_0: agent\n  spk_1: client\n", ":3",
     "transcript_speakers.spk_1: must be one of 'agent', 'customer' or 'unknown'"),
    ("transcript_speakers:\n  Speaker 1: agent\n  speaker 1: customer\n", ":1",
     "transcript_speakers: 'speaker 1' is named twice, as agent and customer"),
    ("runner:\n  workers: 2.5\n", ":2", "runner.workers: must be a whole number (it is 2.5)"),
    ("runner:\n  address: tcp://10.0.0.5:8786\n", ":1", "runner: address only goes with kind: dask"),
    ("redaction:\n  entities: card\n", ":2", "redaction.entities: must be a list, e.g. [a, b] or one '- item' a line "
     "(it is 'card')"),
    ("asr: tiny\n", ":1", "asr: must be keys and values (it is 'tiny')"),
    ("asr:\n  vad_filter: maybe\n", ":2", "asr.vad_filter: must be true or false (it is 'maybe')"),
    ("- just\n- a list\n", "", "(top level): must be a mapping"),
    ("asr: [unclosed\n", ":2", "not valid YAML: did not find expected ',' or ']' (column 1; while parsing a flow "
     "sequence that starts on line 1)"),
    ("asr:\n\tbeam_size: 5\n", ":2", "not valid YAML: a tab character (column 1); indent with spaces, YAML does "
     "not allow tabs there"),
    ("asr:\n  beam_size: 5\n\t\n", ":3", "not valid YAML: a tab character"),
    ("out: a\nasr:\n  beam_size: 5\nout: b\n", ":4", "not valid YAML: the key 'out' is given twice (first on line 1)"),
])
def test_errors_name_file_line_key_and_problem(tmp_path, text, where, message):
    """The line is the key's own, counted from 1 as an editor counts: where the author goes to fix it."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}{where}: ")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_file_with_many_problems_names_the_first_three_in_one_line(tmp_path):
    """One edit mends what one run shows; a file wrong everywhere still gives a line a terminal can show."""
    problems = ["line 3: commit_every: must be a whole number (it is 'lots')", "line 5: runner.workers: must be a "
                "whole number (it is 2.5)", "line 7: channels.agent: must be one of 'left' or 'right' (it is 'middle')"]
    path = write(tmp_path, "asr:\n  beamsize: 5\ncommit_every: lots\nrunner:\n  workers: 2.5\nchannels:\n"
                           "  agent: middle\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    said = str(err.value)
    head, *rest = said.removesuffix(" (and 1 more problem)").split("; also ")
    assert said.endswith(" (and 1 more problem)") and "\n" not in said
    assert head.startswith(f"{path}:2: asr.beamsize: unknown key (the keys here: model, ") and head.endswith(
        '; see README.md, "Configuration"')  # the typo first: it is most often the cause of the rest
    assert len(rest) == 2 and set(rest) < set(problems)


def test_paths_resolve_against_the_config_folder(tmp_path):
    cfg = load_config(write(tmp_path, "input: calls\nout: ../results\n"))
    assert cfg.input == tmp_path / "calls"
    assert cfg.out == tmp_path.parent / "results"


def test_a_home_folder_is_read_as_a_shell_reads_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    cfg = load_config(write(tmp_path, "input: ~/recordings\nout: ~/callintel/out\n"))
    assert (cfg.input, cfg.out) == (tmp_path / "home/recordings", tmp_path / "home/callintel/out")
    assert with_overrides(cfg, transcripts="~/tx").transcripts == tmp_path / "home/tx"


def test_overrides_resolve_against_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = with_overrides(Config(), input="rec", workers=3, out=None)
    assert cfg.input == tmp_path / "rec" and cfg.workers() == 3 and cfg.out == Path("data/out")


def test_hash_changes_with_what_affects_output_only():
    base = Config()
    assert base.hash() != base.model_copy(update={"asr": base.asr.model_copy(update={"beam_size": 1})}).hash()
    assert base.hash() == with_overrides(base, workers=7).hash()


KEYS = ["input", "out", "signals", "transcripts", "commit_every", "import_commit_every", "asr", "beam_size", "pause_s", "cron", "schedule",
        "channels", "agent", "redaction", "entities", "runner", "workers", "bogus"]
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 50) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
    max_leaves=8)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=4))
def test_any_yaml_document_loads_or_fails_in_one_line(tmp_path, doc):
    """Whatever a person writes, the loader answers with a Config or one line naming the file; nothing else."""
    path = tmp_path / "callintel.yaml"
    path.write_text(yaml.safe_dump(doc))
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        assert re.match(rf"{re.escape(str(path))}(:\d+)?: ", str(exc)) and "\n" not in str(exc)
    else:
        assert isinstance(cfg, Config) and cfg.out.is_absolute()


def test_an_unknown_key_lists_the_keys_there_and_where_the_readme_documents_them(tmp_path):
    """It used to say "check the spelling against DESIGN.md", a file a user's clone does not have."""
    path = write(tmp_path, "redaction:\n  entitys: []\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f'{path}:2: redaction.entitys: unknown key (the keys here: entities, audio); see README.md, ' \
                             f'"Configuration"'
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "inptu: calls\n"))
    assert str(err.value) == (f"{path}:1: inptu: unknown key (the keys here: input, transcripts, out, signals, commit_every, "
                              f"import_commit_every, unsized_wav_settle_minutes, transcript_speakers, file_names, asr, channels, redaction, "
                              f"topics, "
                              f'schedule, runner); see README.md, "Configuration"')


def test_the_readme_sections_errors_and_shipped_files_point_at_exist():
    from pipeline import config, rubric, signals

    headings = {line.lstrip("#").strip() for line in (ROOT / "README.md").read_text().splitlines()
                if line.startswith("#")}
    for docs in (config.DOCS, rubric.QA_DOCS, signals.DOCS, 'README.md, "Inputs"'):
        assert docs.split('"')[1] in headings, docs
    readme = (ROOT / "README.md").read_text()
    assert [key for key, field in Config.model_fields.items() if not field.exclude and f"| {key} " not in readme
            and f"| {key}." not in readme] == []
    for shipped in (ROOT / "signals").glob("*.yaml"):
        assert "DESIGN.md" not in shipped.read_text(), shipped


def test_speakers_names_are_matched_as_written_in_any_case(tmp_path):
    cfg = load_config(write(tmp_path, "transcript_speakers:\n  ' Speaker 1': agent\n  SPK_1: customer\n"))
    assert cfg.transcript_speakers == {"speaker 1": "agent", "spk_1": "customer"}
