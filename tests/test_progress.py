"""Progress of long steps: a bar at a terminal, whole lines in a log, nothing with --quiet."""
from tqdm import tqdm

from pipeline import progress


def test_a_log_gets_whole_lines_with_how_far_and_how_long_left(capsys):
    """stderr is not a terminal here, as under cron: no bar, lines (the first after `every` seconds)."""
    with progress.bar(600, "s", "transcribing audio", None) as done:
        assert isinstance(done, progress.LogLines)
        done.every = 0  # a line at every update, instead of one a minute
        done.update(150)
        done.update(450)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2  # two updates; the end was said by the last
    assert lines[0] == "transcribing audio: 150 of 600 s (25%) in 0.0 min, about 0.0 min left"
    assert lines[1].endswith("600 of 600 s (100%) in 0.0 min")


def test_quiet_says_nothing_and_a_terminal_gets_a_bar(capsys):
    quiet = progress.bar(10, "call", "re-scoring stored calls", False)
    assert isinstance(quiet, tqdm) and quiet.disable
    shown = progress.bar(10, "call", "re-scoring stored calls", True)
    assert isinstance(shown, tqdm) and not shown.disable
    shown.close()
    assert list(progress.tracked(iter("abc"), 3, "page", "scorecard pages", False)) == ["a", "b", "c"]
    assert "scorecard pages" not in capsys.readouterr().err
