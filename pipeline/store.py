"""The only module that touches Parquet or DuckDB files.

Layout under the output folder:

    parquet/<table>/call_date=YYYY-MM-DD/part-<run>-<n>.parquet   the data (source of truth)
    parquet/_manifest.json                                        which part files are committed
    callintel.duckdb                                              tables + views, rebuilt from the parts
    runs/<run_id>.json                                            run summaries
    scorecards/<call_date>/<call_id>.html                         HTML scorecards (pipeline/store_pages.py)
    .lock                                                         one writer at a time (pipeline/store_lock.py)

Why a manifest: a commit writes its part files under temporary names, renames
them, and only then atomically replaces the manifest. A run killed at any point
leaves either the old manifest or the new one; part files no manifest names are
debris and are removed by the next writer. Readers only ever see committed parts.

Why the DuckDB file is copied and swapped: DuckDB allows one writing process per
file, and analysts keep it open read-only. Publishing builds `callintel.duckdb.next`
and `os.replace`s it over the old file, so open readers keep their snapshot and
new ones see the new data; the nightly run never waits for them.
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.ingest import audio_digest, call_digest
from pipeline.listing import META_KEY as SETTLED, unsettled
from pipeline.schemas import TABLES, conform
from pipeline.store_db import DB_NAME, DatabaseMixin, StoreError
from pipeline.store_lock import LockMixin
from pipeline.store_pages import PagesMixin

# 2: RELEASE_META is kept up to date. A release before writes 1 and commits without keeping it (it drops the
# `rubrics` table it does not know, and stores calls judged by its code), so then it is not believed; and a
# newer release's store (a higher number) is not written by this one, which would drop what it does not know.
MANIFEST_VERSION = 2
RELEASE_META = ("rules_code", "rubrics_recorded", "pages_code")


def _part_day(part: str) -> date:
    return date.fromisoformat(part.split("/")[0].split("=")[1])


def day_groups(calls_a_day: dict[date, int], per_group: int) -> list[set[date]]:
    """Days, oldest first, in groups of at most per_group calls (a day of more is a group of its own): what to
    read at once when a whole archive must be read, since a day's partition is read whole."""
    groups: list[set[date]] = []
    held = per_group
    for day in sorted(calls_a_day):
        if held + calls_a_day[day] > per_group:
            groups.append(set())
            held = 0
        groups[-1].add(day)
        held += calls_a_day[day]
    return groups


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class Store(DatabaseMixin, PagesMixin, LockMixin):
    def __init__(self, out: str | Path):
        self.out = Path(out)
        self.parquet = self.out / "parquet"
        self.db_path = self.out / DB_NAME
        self.runs_dir = self.out / "runs"
        self._manifest_path = self.parquet / "_manifest.json"
        self._lock_fh = None

    # ---------- reading committed data ----------

    def _manifest_doc(self) -> dict:
        """The committed manifest file as written ({"version", "meta", "parts"}), or {} before the first commit."""
        if not self._manifest_path.exists():
            return {}
        try:
            data = json.loads(self._manifest_path.read_text())
            data["parts"]
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"{self._manifest_path}: unreadable manifest ({exc}); restore it from backup") from None
        return data

    def manifest(self) -> dict[str, list[str]]:
        parts = self._manifest_doc().get("parts", {})
        return {name: list(parts.get(name, [])) for name in TABLES}

    def meta(self) -> dict:
        """Facts committed with the data, e.g. the signals hash the stored signal_hits were tagged with (without
        RELEASE_META when an older release committed last: what they record is then done again)."""
        data = self._manifest_doc()
        meta = data.get("meta", {})
        if data.get("version", 1) < MANIFEST_VERSION:
            meta = {k: v for k, v in meta.items() if k not in RELEASE_META}
        return meta

    def refuse_newer(self) -> None:
        """Refuse a store a newer release wrote: this one would drop what it does not know."""
        if (version := self._manifest_doc().get("version", 1)) > MANIFEST_VERSION:
            raise StoreError(f"{self.out}: written by a newer release of callintel (store format {version}, "
                             f"this release writes {MANIFEST_VERSION}); run that release or a later one here, "
                             "or use a different --out")

    def parts_since(self, table: str, since: date) -> list[str]:
        """Committed parts of a partitioned table holding calls of `since` or later (one day per part)."""
        return [p for p in self.manifest()[table] if _part_day(p) >= since]

    def parts_of(self, table: str, days: set[date]) -> list[str]:
        """Committed parts of a partitioned table holding calls of these days."""
        return [p for p in self.manifest()[table] if _part_day(p) in days]

    def parts_by(self, table: str, run_id: str) -> list[str]:
        """Committed parts of a table that this run wrote."""
        return [p for p in self.manifest()[table] if Path(p).name.startswith(f"part-{run_id}-")]

    def read(self, table: str, columns: list[str] | None = None, since: date | None = None,
             days: set[date] | None = None) -> pa.Table:
        """Committed rows of a table, with exactly its declared schema (or the given columns).

        since: only calls of that day or later; days: only calls of those days. Either reads only
        their partitions, and only the given columns are read from disk.
        """
        parts = self.manifest()[table] if since is None else self.parts_since(table, since)
        if days is not None:
            parts = [p for p in parts if _part_day(p) in days]
        return self._read_parts(table, parts, columns)

    def _read_parts(self, table: str, parts: list[str], columns: list[str] | None = None) -> pa.Table:
        files = [str(self.parquet / table / p) for p in parts]
        if not files:
            full = TABLES[table].schema.empty_table()
        else:
            # A column an older release did not write is absent from every file: COLUMNS() skips it
            # and conform() fills it with nulls, where naming it would be an error.
            wanted = ", ".join(f"'{c}'" for c in columns or [])
            select = f"COLUMNS(lambda c: c IN ({wanted}))" if columns else "*"
            query = (
                f"SELECT {select} FROM read_parquet($files, hive_partitioning=true, union_by_name=true, "
                "hive_types={'call_date': DATE})" if TABLES[table].partitioned else
                f"SELECT {select} FROM read_parquet($files, union_by_name=true)"
            )
            with duckdb.connect() as con:
                full = conform(table, con.sql(query, params={"files": files}).to_arrow_table())
        return full.select(columns) if columns else full

    # ---------- one writer at a time: lock() and reserve() (pipeline/store_lock.py) ----------

    def _recover(self) -> None:
        """Remove what a killed writer left behind: uncommitted parts and temporary files."""
        committed = {(t, p) for t, parts in self.manifest().items() for p in parts}
        if self.parquet.exists():
            for path in self.parquet.rglob("*"):
                if path.is_file() and path != self._manifest_path:
                    rel = path.relative_to(self.parquet)
                    table, part = rel.parts[0], "/".join(rel.parts[1:])
                    if (table, part) not in committed:
                        path.unlink()
        for leftover in (self.out / (DB_NAME + ".next"), self._manifest_path.with_name("_manifest.json.tmp")):
            leftover.unlink(missing_ok=True)
        shutil.rmtree(self.incoming_pages, ignore_errors=True)
        self.drop_stale_models()

    def drop_stale_models(self) -> None:
        """Model files no commit names: saved by a run killed before its commit, replaced, or forgotten."""
        models, meta = self.out / "models", self.meta()
        keep = {meta.get("topic_model"), meta.get("topic_vectors")}
        keep |= {entry["file"] for entry in meta.get("topic_vectors_assigned") or []}
        for path in models.glob("*") if models.exists() else []:
            if path.name not in keep:
                path.unlink()

    # ---------- fitted models ----------

    def save_model(self, filename: str, save: Callable[[Path], None]) -> None:
        """Write a fitted model file; it becomes current when a commit names it in meta (`topic_model`)."""
        self._require_lock()
        path = self.out / "models" / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        save(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def model_path(self) -> Path | None:
        """The committed topic model file, if any."""
        name = self.meta().get("topic_model")
        return self.out / "models" / name if name else None

    # ---------- writing ----------

    def commit(self, run_id: str, seq: int | str, tables: dict[str, pa.Table],
               remove: dict[str, list[str]] | None = None, meta: dict | None = None) -> None:
        """Append rows, drop whole part files and update meta, as one atomic step."""
        self._require_lock()
        manifest = self.manifest()
        meta = {**self.meta(), **(meta or {})}
        filename = f"part-{run_id}-{seq if isinstance(seq, str) else f'{seq:05d}'}.parquet"
        for name, rows in tables.items():
            rows = conform(name, rows)
            if len(rows):
                manifest[name] += self._write_parts(name, rows, filename)
        for name, parts in (remove or {}).items():
            drop = set(parts)
            manifest[name] = [p for p in manifest[name] if p not in drop]
        self.parquet.mkdir(parents=True, exist_ok=True)
        _write_atomic(self._manifest_path, json.dumps(
            {"version": MANIFEST_VERSION, "meta": meta, "parts": manifest}, indent=1).encode())
        for name, parts in (remove or {}).items():
            for part in parts:
                (self.parquet / name / part).unlink(missing_ok=True)

    def compact(self, run_id: str) -> int:
        """Merge this run's part files into one per table and day, atomically; returns the parts merged.

        A night commits every few calls (so a kill loses little), which leaves hundreds of small files
        per table and day: every reader pays per file, and the manifest rewritten at each commit would
        grow with every night. Earlier runs' parts are left alone, so this costs O(this run's rows).
        """
        self._require_lock()
        tables, remove = {}, {}
        for name in TABLES:
            days: dict[str, list[str]] = {}
            for part in self.parts_by(name, run_id):
                days.setdefault(str(Path(part).parent), []).append(part)
            merge = [p for parts in days.values() if len(parts) > 1 for p in parts]
            if merge:
                tables[name], remove[name] = self._read_parts(name, merge), merge
        if tables:
            self.commit(run_id, "compact", tables, remove)
        return sum(map(len, remove.values()))

    def _write_parts(self, name: str, rows: pa.Table, filename: str) -> list[str]:
        groups = [(None, rows)]
        if TABLES[name].partitioned:
            days = pc.unique(rows.column("call_date")).to_pylist()
            if None in days:
                raise ValueError(f"{name}: rows without call_date cannot be stored")
            groups = [(day, rows.filter(pc.equal(rows.column("call_date"), day)).drop_columns(["call_date"]))
                      for day in sorted(days)]
        written = []
        for day, group in groups:
            rel = f"call_date={day.isoformat()}/{filename}" if day else filename
            path = self.parquet / name / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            pq.write_table(group, tmp, compression="zstd")
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            written.append(rel)
        return written

    def forget(self, run_id: str, call_ids: set[str], record: dict) -> int:
        """Remove every row of these calls from every table in one atomic commit; returns rows removed.

        Tables holding them are rewritten without them. `record` is the `deletions` row (who/when, not what);
        the ids are kept only as SHA-256 digests in the manifest, so ingest can refuse to store them again.
        """
        self._require_lock()
        manifest, keep, remove, removed = self.manifest(), {}, {}, 0
        ids = pa.array(sorted(call_ids), pa.string())
        for name, table in TABLES.items():
            if "call_id" not in table.schema.names or not manifest[name]:
                continue
            rows = self.read(name)
            hit = pc.is_in(rows.column("call_id"), ids)
            if not pc.any(hit).as_py():
                continue
            removed += pc.sum(hit).as_py()
            keep[name], remove[name] = rows.filter(pc.invert(hit)), manifest[name]
        meta = self.meta()
        files = self.read("calls", ["call_id", "source_path", "audio_sha256"]).filter(
            pc.is_in(pc.field("call_id"), ids))
        forgotten = sorted(set(meta.get("forgotten", [])) | {call_digest(c) for c in call_ids}
                           | {audio_digest(a) for a in files.column("audio_sha256").to_pylist() if a})
        settled = unsettled(meta.get(SETTLED), files.column("source_path").to_pylist())
        said = set(self.read("utterances", ["call_id", "text"]).filter(
            pc.is_in(pc.field("call_id"), ids)).column("text").to_pylist())
        if said and manifest["topics"]:
            # the utterances left: those rewritten without the calls' turns above (every call's turns, if none)
            remaining = keep["utterances"] if "utterances" in keep else self.read("utterances", ["call_id", "text"])
            keep["topics"], remove["topics"] = self._scrub_topics(said, remaining), manifest["topics"]
        # The topic model holds example turns and centroids of these calls: drop it, the next run refits.
        self.commit(run_id, 1, {**keep, "deletions": [{**record, "rows": removed}]}, remove,
                    meta={"forgotten": forgotten, "topic_model": None, "topic_model_dropped": "callintel forget",
                          "topic_vectors": None,
                          "topic_vectors_assigned": [], SETTLED: settled})
        self.drop_stale_models()
        for folder, pattern in (("scorecards", "*/*.html"), ("redacted_audio", "*/*.flac")):
            for path in (self.out / folder).glob(pattern) if (self.out / folder).exists() else []:
                if path.stem in call_ids:
                    path.unlink()
        return removed

    def calls_with_audio(self, digests: list[str]) -> dict[str, str]:
        """audio_sha256 -> call_id of the stored calls whose recording has one of these digests. Reads one column
        of every stored call, only on a night with new recordings (a million stored calls: about 0.15 s)."""
        if not digests:
            return {}
        rows = self.read("calls", ["call_id", "audio_sha256"])
        rows = rows.filter(pc.is_in(rows.column("audio_sha256"), pa.array(digests, pa.string())))
        return dict(zip(rows.column("audio_sha256").to_pylist(), rows.column("call_id").to_pylist()))

    def read_calls(self, tables: tuple[str, ...], calls: dict[str, date]) -> dict[str, pa.Table]:
        """Committed rows of these calls (call_id -> call_date) in each table, reading only their days."""
        ids, days = pa.array(sorted(calls), pa.string()), set(calls.values())
        return {name: (t := self.read(name, days=days)).filter(pc.is_in(t.column("call_id"), ids))
                for name in tables}

    def audio_path(self, call: dict) -> Path:
        """The redacted copy of a call's recording."""
        return self.out / "redacted_audio" / call["call_date"].isoformat() / f"{call['call_id']}.flac"

    def write_audio(self, call: dict, write: Callable[[Path], object]) -> Path:
        """Write the redacted copy atomically (before the call is committed, so a kill leaves no call without it)."""
        self._require_lock()
        path = self.audio_path(call)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        write(tmp)
        os.replace(tmp, path)
        return path

    def _scrub_topics(self, said: set[str], remaining: pa.Table) -> pa.Table:
        """`topics` without the forgotten calls' turns among their examples, nor terms of their callers' own words
        (pipeline/topic_scrub.py)."""
        from pipeline.topic_scrub import scrub

        return pa.Table.from_pylist(scrub(self.read("topics").to_pylist(), said, remaining),
                                    schema=TABLES["topics"].schema)

    def forgotten(self) -> set[str]:
        """Digests of forgotten call ids (see ingest.call_digest)."""
        return set(self.meta().get("forgotten", []))

    # ---------- run summaries ----------

    def write_summary(self, summary: dict) -> Path:
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        path = self.runs_dir / f"{summary['run_id']}.json"
        _write_atomic(path, json.dumps(summary, indent=2, default=str).encode())
        return path

    def stale_summaries(self) -> list[dict]:
        """Summaries of runs that were killed before they finished (only meaningful under the lock)."""
        self._require_lock()
        stale = []
        for path in sorted(self.runs_dir.glob("*.json")) if self.runs_dir.exists() else []:
            try:
                summary = json.loads(path.read_text())
            except ValueError:
                continue
            if summary.get("status") == "running":
                stale.append(summary)
        return stale
