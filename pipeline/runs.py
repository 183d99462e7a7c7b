"""What one nightly run did: counts, failures and notes, as a `runs` row and a JSON summary."""
from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from pipeline.ingest import CallJob, call_row
from pipeline.transcribe import CallTranscript
from pipeline.views import VIEWS

# A write refused for want of room, as an operator would say it: the OSError alone names neither the disk nor the cure.
FULL_DISK = {errno.ENOSPC: "is full", errno.EDQUOT: "holds all this user's quota allows"}
COUNTS = ("found", "skipped", "transcribed", "imported", "utterances", "failed", "redacted", "tagged", "retagged",
          "scored", "rescored", "flagged")


@dataclass
class Run:
    config_hash: str
    signals_hash: str | None = None
    qa_hash: str | None = None
    run_id: str = field(default_factory=lambda: f"{datetime.now():%Y%m%dT%H%M%S}-{secrets.token_hex(2)}")
    started_at: datetime = field(default_factory=lambda: datetime.now().replace(microsecond=0))
    finished_at: datetime | None = None
    status: str = "running"
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    failures: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time of each step: in the summary, not the table
    audio_s: float = 0.0  # length of the recordings transcribed (summary only): with seconds, the speed of ASR
    step_now: str | None = None  # the step under way (summary only): where an error stopped the run

    @contextlib.contextmanager
    def step(self, name: str):
        """Time one step of the night, so an operator sees where the night went (the summary's `seconds`)."""
        start, self.step_now = time.perf_counter(), name
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - start, 3)

    def add_failures(self, failures: list[dict]) -> None:
        self.failures += [{"run_id": self.run_id, **f} for f in failures]
        self.counts["failed"] = len(self.failures)

    def finish(self) -> None:
        self.finished_at = datetime.now().replace(microsecond=0)
        self.status = "partial" if self.failures else "ok"

    def stopped(self, exc: BaseException, out: Path | None = None) -> str:
        """Record an error that stopped the run; returns the one line that says so (also in notes)."""
        self.finished_at = datetime.now().replace(microsecond=0)
        self.status = "failed"
        where = f"in step '{self.step_now}'" if self.step_now else "before its first step"
        line = (f"stopped by an error {where}: {error_line(exc, out)}; what it had committed was kept and the next "
                "run does the rest")
        self.notes.append(line)
        return line

    def row(self) -> dict:
        return {"run_id": self.run_id, "started_at": self.started_at, "finished_at": self.finished_at,
                "status": self.status, "config_hash": self.config_hash, "signals_hash": self.signals_hash,
                "qa_hash": self.qa_hash,
                "notes": self.notes, **self.counts}

    def summary(self, **extra) -> dict:
        return {**asdict(self), **extra}

    @classmethod
    def interrupted(cls, summary: dict, stored: dict[str, int], row: dict | None = None) -> Run:
        """A run found 'running' in its summary while we hold the lock was killed, or could not record its end
        (a full disk); `stored`: the calls it had committed, as counts (transcribed, imported); `row`: its own
        `runs` row, when it got as far as committing one."""
        run = cls(summary.get("config_hash", ""), summary.get("signals_hash"), summary.get("qa_hash"),
                  run_id=summary["run_id"],
                  started_at=datetime.fromisoformat(summary["started_at"]))
        if row is not None and row["status"] == "failed":  # it said why it stopped, then could not save its summary
            run.status, run.finished_at, run.notes = "failed", row["finished_at"], list(row["notes"] or [])
            run.counts = {k: row[k] for k in COUNTS}
            return run
        run.status = "interrupted"
        if row is not None:  # its row said 'ok' or 'partial', but the database was never published with it
            run.finished_at, run.counts = row["finished_at"], {k: row[k] for k in COUNTS}
            run.notes = list(row["notes"] or []) + [
                "stopped after committing its calls and this row, before its end was recorded (killed, or a full "
                "disk?): the next run published the database"]
            return run
        run.counts = {**dict.fromkeys(COUNTS, None), **stored}
        calls = sum(stored.values())
        run.notes = [f"stopped before it finished (killed, or it could not record its end: a full disk?); the "
                     f"{calls} call{'s' * (calls != 1)} it had committed were kept and the rest was redone"]
        return run


def error_line(exc: BaseException, out: Path | None = None) -> str:
    """An error as one line: its type and the first line of its message; a full disk under `out` as which disk is
    full, how much is free and what to do."""
    if out is not None and (full := _full_disk(exc)) is not None:
        return (f"the disk holding {out} {FULL_DISK[full[1]]} ({free_space(out)} free; {_first_line(full[0])}): free "
                "some space there, or set `out` to a folder on a larger disk")
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    said = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"{type(exc).__name__}: {said}"


def _full_disk(exc: BaseException | None) -> tuple[BaseException, int] | None:
    """The error for want of room that exc is or was raised while handling (a library may wrap it), with its errno.
    DuckDB says it in words only: 'Could not write file "...": No space left on device'."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError) and exc.errno in FULL_DISK:
            return exc, exc.errno
        if said := [code for code in FULL_DISK if os.strerror(code) in str(exc)]:
            return exc, said[0]
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def free_space(folder: Path) -> str:
    """What is free on the disk that holds folder, in words."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return "unknown space"
    power = min(3, (free.bit_length() - 1) // 10) if free else 0  # 1024 ** power <= free
    return f"{free} bytes" if power == 0 else f"{free / 1024 ** power:.1f} {'KMG'[power - 1]}B"


def transcript_rows(job: CallJob, result: CallTranscript, run_id: str, asr_model: str) -> tuple[dict, list[dict]]:
    """The `calls` row and `utterances` rows of one transcribed recording."""
    utterances = [{**u, "call_id": job.call_id, "call_date": job.call_date} for u in result.utterances]
    call = call_row(job, duration_s=result.duration_s or job.duration_s, asr_model=asr_model,
                    status="ok" if utterances else "no_speech", run_id=run_id)
    return call, utterances


def close_interrupted(store) -> None:
    """Mark runs killed before they finished (their summaries still say 'running'): only under the lock.
    One row a run: a run stopped after committing its own row (while publishing) has that row replaced."""
    stale_runs = store.stale_summaries()
    calls = store.read("calls", ["run_id", "asr_model"]).to_pylist() if stale_runs else []  # only after a kill
    rows = {r["run_id"]: r for r in store.read("runs").to_pylist()} if stale_runs else {}
    for stale in stale_runs:
        mine = [c["asr_model"] for c in calls if c["run_id"] == stale["run_id"]]
        imported = mine.count("transcript")
        run = Run.interrupted(stale, {"transcribed": len(mine) - imported, "imported": imported},
                              rows.get(stale["run_id"]))
        if run.status == "interrupted":
            store.commit(run.run_id, 99_999, {"runs": [run.row()]}, remove=_own_rows(store, run.run_id, ["runs"]))
        store.write_summary(run.summary())


def close_failed(store, run: Run, exc: Exception) -> None:
    """An error stopped the run: its row says where and why, with the counts of what it committed, and the
    DuckDB file shows what was committed. Best effort: the store's own trouble may be what stopped it."""
    print(run.stopped(exc, store.out))
    with contextlib.suppress(Exception):
        # in place of the row (and failures) it committed before the error, if it got that far: publishing
        store.commit(run.run_id, 99_998, {"runs": [run.row()], "failures": run.failures},
                     remove=_own_rows(store, run.run_id, ["runs", "failures"]))
        store.publish(VIEWS)
    with contextlib.suppress(Exception):
        store_summary(store, run)


def _own_rows(store, run_id: str, tables: list[str]) -> dict[str, list[str]]:
    """The part files of these tables that run_id committed (its row, its failures): to replace them."""
    return {name: store.parts_by(name, run_id) for name in tables}


def store_summary(store, run: Run) -> dict:
    """Write the run's JSON summary; returns it, with where it and the database are."""
    path = store.write_summary(run.summary(database=str(store.db_path), out=str(store.out)))
    return run.summary(database=str(store.db_path), out=str(store.out), summary_path=str(path))
