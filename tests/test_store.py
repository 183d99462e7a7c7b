"""Every table round-trips with its declared schema; commits are atomic; DuckDB is published by swap."""
import subprocess
import sys
from datetime import date, datetime

import duckdb
import pyarrow as pa
import pytest

from conftest import ROOT
from pipeline.schemas import TABLES, conform
from pipeline.store import Store, StoreError
from pipeline.store_lock import StoreBusy


def sample(field: pa.Field, i: int):
    t = field.type
    if field.name == "call_date":
        return date(2026, 11, 9 + i % 2)
    if pa.types.is_string(t):
        return f"{field.name}-{i}"
    if pa.types.is_integer(t):
        return i + 1
    if pa.types.is_floating(t):
        return i + 0.5
    if pa.types.is_boolean(t):
        return i % 2 == 0
    if pa.types.is_timestamp(t):
        return datetime(2026, 11, 9, 10, i)
    if pa.types.is_date(t):
        return date(2026, 11, 1 + i)
    if pa.types.is_struct(t):
        return {f.name: sample(f, i) for f in t}
    if pa.types.is_list(t):
        return [sample(t.value_field, i), sample(t.value_field, i + 1)]
    raise AssertionError(f"no sample for {t}")


def rows(name: str, n: int = 3) -> pa.Table:
    return conform(name, [{f.name: sample(f, i) for f in TABLES[name].schema} for i in range(n)])


def sort(table: pa.Table) -> pa.Table:
    """Row order is not part of a table: sort on every scalar column before comparing."""
    scalars = [c for c in table.column_names if not pa.types.is_nested(table.schema.field(c).type)]
    return table.sort_by([(c, "ascending") for c in scalars])


@pytest.mark.parametrize("name", sorted(TABLES))
def test_table_round_trips_with_declared_schema(tmp_path, name):
    store = Store(tmp_path)
    data = rows(name)
    with store.lock():
        store.commit("r1", 1, {name: data})
        store.publish()
    back = store.read(name)
    assert back.schema == TABLES[name].schema
    assert sort(back).equals(sort(data))
    with store.connect_read_only() as con:
        assert [c[0] for c in con.execute(f"DESCRIBE {name}").fetchall()] == TABLES[name].schema.names
        from_db = conform(name, con.sql(f"SELECT * FROM {name}").to_arrow_table())
    assert sort(from_db).equals(sort(data))


def test_partitioned_tables_are_hive_folders_by_call_date(tmp_path):
    store = Store(tmp_path)
    with store.lock():
        store.commit("r1", 1, {"utterances": rows("utterances"), "runs": rows("runs")})
    files = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "parquet").rglob("*.parquet"))
    assert files == [
        "parquet/runs/part-r1-00001.parquet",
        "parquet/utterances/call_date=2026-11-09/part-r1-00001.parquet",
        "parquet/utterances/call_date=2026-11-10/part-r1-00001.parquet",
    ]


def test_uncommitted_parts_and_temp_files_are_removed_by_next_writer(tmp_path):
    store = Store(tmp_path)
    with store.lock():
        store.commit("r1", 1, {"calls": rows("calls")})
    # What a writer killed mid-commit leaves: parts no manifest names, half-written temp files.
    debris = [tmp_path / "parquet/calls/call_date=2026-11-09/part-r2-00001.parquet",
              tmp_path / "parquet/calls/call_date=2026-11-09/part-r2-00002.parquet.tmp",
              tmp_path / "parquet/_manifest.json.tmp", tmp_path / "callintel.duckdb.next",
              tmp_path / "scorecards/.incoming/c-9.html.tmp"]
    debris[-1].parent.mkdir(parents=True)
    for path in debris:
        path.write_bytes(b"half")
    assert len(store.read("calls")) == 3  # readers never see uncommitted parts
    with store.lock():
        pass
    assert not any(p.exists() for p in debris)
    assert len(store.read("calls")) == 3


def test_commit_can_replace_parts_atomically(tmp_path):
    store = Store(tmp_path)
    with store.lock():
        store.commit("r1", 1, {"signal_hits": rows("signal_hits")})
        old = store.manifest()["signal_hits"]
        store.commit("r2", 1, {"signal_hits": rows("signal_hits", 1)}, remove={"signal_hits": old})
        store.publish()
    assert len(store.read("signal_hits")) == 1
    assert not any((tmp_path / "parquet/signal_hits" / p).exists() for p in old)
    with store.connect_read_only() as con:
        assert con.execute("SELECT count(*) FROM signal_hits").fetchone()[0] == 1


def test_second_writer_is_refused_with_a_clear_message(tmp_path):
    first, second = Store(tmp_path), Store(tmp_path)
    with first.lock():
        with pytest.raises(StoreBusy, match=r"another callintel run is writing here \(pid \d+, started"):
            with second.lock():
                pass
    with second.lock():  # free again once the first is done
        pass


def test_a_writer_refused_by_forget_is_told_it_is_forget(tmp_path, monkeypatch):
    """A run refused while `callintel forget` held the folder was told "another callintel run is writing here", with
    forget's pid: the operator looked for a run that was not there."""
    import re

    monkeypatch.setattr(sys, "argv", ["/opt/callintel/.venv/bin/callintel", "forget", "--call-id", "c-1", "--yes"])
    with Store(tmp_path).lock():
        assert (tmp_path / ".lock").read_text().startswith("forget: pid ")
        held = (tmp_path / ".lock").read_text()
        with pytest.raises(StoreBusy, match=re.escape(
                f"another callintel forget is writing here ({held.removeprefix('forget: ')})")):
            with Store(tmp_path).lock():
                pass


def test_a_reserved_folder_is_locked_by_this_process_only_and_still_recovered(tmp_path):
    """`callintel run` reserves the folder before Prefect starts; the flow it runs then locks it through that
    reservation (and clears a killed run's debris, as any lock does), while any other process is refused."""
    debris = tmp_path / "parquet/calls/call_date=2026-11-20/part-killed-1.parquet"
    debris.parent.mkdir(parents=True)
    debris.write_bytes(b"an uncommitted part")
    other = [sys.executable, "-c", f"from pipeline.store import Store\nwith Store({str(tmp_path)!r}).lock(): pass"]
    with Store(tmp_path).reserve():
        assert debris.exists()  # a reservation only holds the folder; the flow's lock() recovers
        refused = subprocess.run(other, capture_output=True, text=True, cwd=ROOT)
        assert refused.returncode == 1 and "another callintel run is writing here (pid" in refused.stderr
        store = Store(tmp_path)
        with store.lock():
            assert not debris.exists()
            store.commit("r1", 1, {})
        assert "another callintel run" in subprocess.run(other, capture_output=True, text=True, cwd=ROOT).stderr
    assert subprocess.run(other, capture_output=True, text=True, cwd=ROOT).returncode == 0  # let go with the reservation


def test_second_writer_can_wait_for_the_first(tmp_path):
    import threading

    first, second = Store(tmp_path), Store(tmp_path)
    held, release = threading.Event(), threading.Event()

    def hold():
        with first.lock():
            held.set()
            release.wait(5)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(5)
    threading.Timer(1.0, release.set).start()
    with second.lock(wait_s=30):  # gets the folder once the first lets go, about a second later
        assert release.is_set()
    thread.join()


def test_publish_is_incremental_and_never_blocked_by_readers(tmp_path):
    store = Store(tmp_path)
    with store.lock():
        store.commit("r1", 1, {"calls": rows("calls", 2)})
        assert store.publish() is True
        assert store.publish() is False  # nothing new: no copy, no swap
    reader = duckdb.connect(str(store.db_path), read_only=True)
    with store.lock():
        store.commit("r2", 1, {"calls": rows("calls", 3).slice(2)})
        assert store.publish() is True
    # The open reader keeps its snapshot; a new reader sees the new rows.
    assert reader.execute("SELECT count(*) FROM calls").fetchone()[0] == 2
    reader.close()
    with store.connect_read_only() as con:
        assert con.execute("SELECT count(*) FROM calls").fetchone()[0] == 3


def test_pages_are_written_in_groups_and_one_that_cannot_be_written_does_not_stop_the_others(tmp_path, monkeypatch):
    import pipeline.store_pages as store_module

    monkeypatch.setattr(store_module, "PAGES_PER_FLUSH", 2)  # 5 pages: groups of 2, 2 and 1
    flushes, flush = [], store_module._flush_to_disk
    monkeypatch.setattr(store_module, "_flush_to_disk", lambda folder: flushes.append(folder) or flush(folder))
    calls = [{"call_id": f"c-{i}", "call_date": date(2026, 11, 9 + i)} for i in range(5)]
    store = Store(tmp_path)
    (tmp_path / "scorecards").mkdir()
    (tmp_path / "scorecards/2026-11-11").write_text("a file where c-2's day folder goes")
    with store.lock():
        failed = store.write_pages((c, f"<p>page of {c['call_id']} ü</p>".encode()) for c in calls)
    assert list(failed) == ["c-2"] and isinstance(failed["c-2"], OSError)
    assert len(flushes) == 3
    for call in calls[:2] + calls[3:]:
        assert store.page_path(call).read_text(encoding="utf-8") == f"<p>page of {call['call_id']} ü</p>"
    assert sorted(p.name for p in (tmp_path / "scorecards").iterdir()) == [  # no staging folder left behind
        "2026-11-09", "2026-11-10", "2026-11-11", "2026-11-12", "2026-11-13"]
    with pytest.raises(RuntimeError, match="store.lock"):
        store.write_pages([(calls[0], b"<p>again</p>")])


def test_writes_outside_the_lock_are_refused(tmp_path):
    with pytest.raises(RuntimeError, match="store.lock"):
        Store(tmp_path).commit("r1", 1, {"calls": rows("calls")})


def test_analyst_connection_is_read_only(tmp_path):
    store = Store(tmp_path)
    with store.lock():
        store.publish()
    with store.connect_read_only() as con, pytest.raises(duckdb.Error, match="read-only"):
        con.execute("DELETE FROM calls")


def test_compact_merges_one_runs_parts_into_one_per_day_and_keeps_every_row(tmp_path):
    store = Store(tmp_path)
    batches = [rows("utterances", 4) for _ in range(3)]
    with store.lock():
        store.commit("r0", 1, {"utterances": rows("utterances", 2)})  # an earlier night: left alone
        for seq, batch in enumerate(batches, 1):
            store.commit("r1", seq, {"utterances": batch, "runs": rows("runs", 1)})
        before = store.read("utterances")
        merged = store.compact("r1")
        store.publish()
    parts = store.manifest()["utterances"]
    # 3 commits x 2 days of r1 became one part per day; r0's two parts are untouched
    assert merged == 6 + 3
    assert sorted(p for p in parts if "-r1-" in p) == [
        "call_date=2026-11-09/part-r1-compact.parquet", "call_date=2026-11-10/part-r1-compact.parquet"]
    assert len([p for p in parts if "-r0-" in p]) == 2
    assert store.manifest()["runs"] == ["part-r1-compact.parquet"]
    assert sort(store.read("utterances")).equals(sort(before))
    assert len(list((tmp_path / "parquet" / "utterances").rglob("*.parquet"))) == 4
    with store.connect_read_only() as con:
        assert con.execute("SELECT count(*) FROM utterances").fetchall()[0][0] == 2 + 3 * 4


def test_read_only_the_given_days_and_columns(tmp_path):
    store = Store(tmp_path)
    with store.lock():
        store.commit("r1", 1, {"utterances": rows("utterances", 5)})
    day = store.read("utterances", ["call_id", "call_date"], days={date(2026, 11, 10)})
    assert day.column_names == ["call_id", "call_date"]
    assert set(day.column("call_date").to_pylist()) == {date(2026, 11, 10)}
    assert sorted(day.column("call_id").to_pylist()) == ["call_id-1", "call_id-3"]
    assert store.read("utterances", days=set()).num_rows == 0


def test_day_groups_keep_each_day_whole_and_each_group_within_its_bound():
    """How a whole archive is read a few days at a time (re-scoring, re-rendering pages)."""
    from datetime import date

    from pipeline.store import day_groups

    d = [date(2026, 11, n) for n in range(1, 6)]
    calls = {d[3]: 1, d[0]: 3, d[2]: 9, d[1]: 4, d[4]: 2}            # a day of 9 calls, more than a group holds
    assert day_groups(calls, 5) == [{d[0]}, {d[1]}, {d[2]}, {d[3], d[4]}]
    assert day_groups(calls, 7) == [{d[0], d[1]}, {d[2]}, {d[3], d[4]}]
    assert day_groups(calls, 100) == [set(d)] and day_groups({}, 5) == []


def test_an_unreadable_manifest_is_one_clear_error_wherever_it_is_read(tmp_path):
    store = Store(tmp_path)
    store.parquet.mkdir(parents=True)
    (store.parquet / "_manifest.json").write_text('{"version": 2, "meta": {"signals_hash": "ab')  # cut off mid-write
    for read in (store.manifest, store.meta, store.refuse_newer):
        with pytest.raises(StoreError, match=r"_manifest.json: unreadable manifest \(.*\); restore it from backup"):
            read()
