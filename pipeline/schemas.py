"""Every table of DESIGN.md, declared once. Writers, DuckDB DDL, docs and tests derive from here.

Tables keyed by call carry `call_date`, which is also their hive partition
(`parquet/<table>/call_date=YYYY-MM-DD/`).
"""
from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class Table:
    name: str
    schema: pa.Schema
    key: tuple[str, ...]
    description: str

    @property
    def partitioned(self) -> bool:
        return "call_date" in self.schema.names


WORD = pa.struct([
    ("word", pa.string()),
    ("start_s", pa.float64()),
    ("end_s", pa.float64()),
    ("probability", pa.float32()),
])

EVIDENCE = pa.struct([
    ("utt_idx", pa.int32()),
    ("start_s", pa.float64()),
    ("text", pa.string()),
])

_TABLES = [
    Table("calls", pa.schema([
        ("call_id", pa.string()),
        ("source_path", pa.string()),      # relative to the input (or transcripts) folder
        ("audio_sha256", pa.string()),
        ("file_size", pa.int64()),         # with file_mtime: finds stored files (recordings, transcripts) unread
        ("file_mtime", pa.float64()),
        ("started_at", pa.timestamp("us")),
        ("call_date", pa.date32()),
        ("duration_s", pa.float64()),
        ("channels", pa.int8()),
        ("sample_rate", pa.int32()),
        ("agent_channel", pa.string()),    # left | right | mono
        ("agent_id", pa.string()),
        ("queue", pa.string()),
        ("direction", pa.string()),
        ("asr_model", pa.string()),        # model name, or 'transcript' when imported
        ("status", pa.string()),           # ok | no_speech
        ("run_id", pa.string()),
        ("extra", pa.string()),            # other metadata columns, as JSON
    ]), ("call_id",), "One row per call."),
    Table("utterances", pa.schema([
        ("call_id", pa.string()),
        ("utt_idx", pa.int32()),
        ("speaker", pa.string()),          # agent | customer | unknown
        ("start_s", pa.float64()),
        ("end_s", pa.float64()),
        ("text", pa.string()),
        ("words", pa.list_(WORD)),
        ("confidence", pa.float32()),      # mean word probability; null for imported transcripts
        ("sentiment", pa.float32()),
        ("call_date", pa.date32()),
    ]), ("call_id", "utt_idx"), "One speaker turn, in time order within the call."),
    Table("call_metrics", pa.schema([
        ("call_id", pa.string()),
        ("duration_s", pa.float64()),
        ("agent_talk_s", pa.float64()),
        ("customer_talk_s", pa.float64()),
        ("talk_ratio", pa.float64()),            # agent share of talk time
        ("silence_s", pa.float64()),             # between the first and the last turn
        ("max_silence_s", pa.float64()),
        ("overlap_s", pa.float64()),
        ("interruptions", pa.int32()),
        ("agent_interruptions", pa.int32()),     # agent started over the customer
        ("customer_interruptions", pa.int32()),
        ("agent_wpm", pa.float64()),
        ("customer_wpm", pa.float64()),
        ("turns", pa.int32()),
        ("sentiment_start", pa.float32()),       # customer, first turns
        ("sentiment_end", pa.float32()),         # customer, last turns
        ("sentiment_change", pa.float32()),
        ("moments", pa.list_(pa.struct([          # where a metric's events happened: its evidence
            ("metric", pa.string()),               # agent_interruptions, customer_interruptions, max_silence_s
            ("utt_idx", pa.int32()),
            ("start_s", pa.float64()),
        ]))),
        ("call_date", pa.date32()),
    ]), ("call_id",), "Talk time, silence, overlap, interruptions, pace and sentiment per call (pipeline/metrics.py)."),
    Table("signal_hits", pa.schema([
        ("call_id", pa.string()),
        ("signal_id", pa.string()),
        ("utt_idx", pa.int32()),
        ("start_s", pa.float64()),
        ("speaker", pa.string()),
        ("matched_text", pa.string()),
        ("category", pa.string()),
        ("call_date", pa.date32()),
    ]), ("call_id", "signal_id", "utt_idx", "start_s"), "Where a configured signal fired."),
    Table("call_categories", pa.schema([
        ("call_id", pa.string()),
        ("category_id", pa.string()),
        ("call_date", pa.date32()),
    ]), ("call_id", "category_id"), "Call-level categories over signals."),
    Table("topics", pa.schema([
        ("model_version", pa.string()),
        ("topic_id", pa.int32()),
        ("label", pa.string()),
        ("top_terms", pa.list_(pa.string())),
        ("size", pa.int64()),
        ("first_seen", pa.date32()),
        ("examples", pa.list_(pa.string())),   # 3 representative utterances (redacted text)
        ("current", pa.bool_()),               # a topic of the model fitted last (the one assigning new calls)
    ]), ("model_version", "topic_id"), "Discovered topics per fitted model."),
    Table("utterance_topics", pa.schema([
        ("call_id", pa.string()),
        ("utt_idx", pa.int32()),
        ("topic_id", pa.int32()),
        ("weight", pa.float32()),
        ("call_date", pa.date32()),
    ]), ("call_id", "utt_idx"), "The topic of each untagged utterance."),
    # topic_trends is a DuckDB view over utterance_topics and topics (pipeline/views.py): always
    # consistent with them, and computed by DuckDB rather than by reloading history.
    Table("scorecards", pa.schema([
        ("call_id", pa.string()),
        ("rubric_id", pa.string()),
        ("rubric_version", pa.int32()),
        ("points", pa.float64()),
        ("max_points", pa.float64()),
        ("pct", pa.float64()),
        ("passed", pa.bool_()),
        ("auto_failed", pa.bool_()),
        ("call_date", pa.date32()),
    ]), ("call_id", "rubric_id", "rubric_version"), "One QA scorecard per call and rubric version."),
    Table("scorecard_items", pa.schema([
        ("call_id", pa.string()),
        ("rubric_id", pa.string()),
        ("rubric_version", pa.int32()),
        ("criterion_id", pa.string()),
        ("question", pa.string()),         # as worded in that rubric version
        ("result", pa.string()),           # pass | fail | na
        ("points", pa.float64()),
        ("max_points", pa.float64()),
        ("evidence", EVIDENCE),            # the utterance that satisfied or broke the criterion
        ("detail", pa.string()),           # why, in words: "agent_greeting at 2.1 s", "talk_ratio 0.82 > 0.7"
        ("call_date", pa.date32()),
    ]), ("call_id", "rubric_id", "rubric_version", "criterion_id"), "Each criterion's result with evidence."),
    # The rubric versions scorecards were scored with, and which are configured now: `current_scorecards` is the
    # scorecards of current versions, so a rollback or a renamed rubric leaves no stale card counted.
    Table("rubrics", pa.schema([
        ("rubric_id", pa.string()),
        ("rubric_version", pa.int32()),
        ("current", pa.bool_()),           # configured in signals/ now
        ("rubric_hash", pa.string()),      # of the definition: a change without a version bump is noticed
        ("pass_pct", pa.float64()),
        ("applies_to", pa.string()),       # "queue billing; direction inbound", or null for the default rubric
        ("criteria", pa.list_(pa.struct([
            ("criterion_id", pa.string()),
            ("question", pa.string()),
            ("points", pa.float64()),
            ("auto_fail", pa.bool_()),
        ]))),
        ("definition", pa.string()),       # the whole rubric as JSON, to audit what a version asked
        ("first_run", pa.string()),        # the run that first scored with this definition
    ]), ("rubric_id", "rubric_version"), "Each rubric version scored with, and whether it is configured now."),
    Table("flags", pa.schema([
        ("call_id", pa.string()),
        ("flag_id", pa.string()),
        ("severity", pa.string()),
        ("reason", pa.string()),
        ("created_run", pa.string()),
        ("call_date", pa.date32()),
    ]), ("call_id", "flag_id"), "Why a call is worth a coach's time."),
    Table("runs", pa.schema([
        ("run_id", pa.string()),
        ("started_at", pa.timestamp("us")),
        ("finished_at", pa.timestamp("us")),
        ("status", pa.string()),           # ok | partial (some calls failed)
        ("config_hash", pa.string()),
        ("found", pa.int64()),             # recordings and transcripts discovered
        ("skipped", pa.int64()),           # not new: stored already, before --since, or set aside (a note says why)
        ("transcribed", pa.int64()),
        ("imported", pa.int64()),          # from the transcripts folder
        ("utterances", pa.int64()),
        ("failed", pa.int64()),
        ("redacted", pa.int64()),          # PII spans taken out of the text before it was stored
        ("signals_hash", pa.string()),     # version of signals/ this run tagged with
        ("tagged", pa.int64()),            # new calls tagged
        ("retagged", pa.int64()),          # stored calls re-tagged because signals/ changed
        ("qa_hash", pa.string()),          # version of the rubrics and flag rules this run scored with
        ("scored", pa.int64()),            # new calls scored
        ("rescored", pa.int64()),          # stored calls re-scored because rubrics, flags or signals changed
        ("flagged", pa.int64()),           # calls of this run (new or re-scored) with at least one flag
        ("notes", pa.list_(pa.string())),
    ]), ("run_id",), "One row per finished nightly run."),
    Table("failures", pa.schema([
        ("run_id", pa.string()),
        ("source_path", pa.string()),
        ("stage", pa.string()),
        ("error", pa.string()),            # one line a human understands
    ]), ("run_id", "source_path", "stage"), "What could not be processed, and why."),
]

_TABLES.append(Table("deletions", pa.schema([
    ("deletion_id", pa.string()),
    ("deleted_at", pa.timestamp("us")),
    ("deleted_by", pa.string()),           # the OS user who ran `callintel forget`
    ("selection", pa.string()),            # which kind of selection (call_id / agent / since), not its values
    ("calls", pa.int64()),
    ("rows", pa.int64()),
]), ("deletion_id",), "Data-subject deletions: who and when, never what."))

TABLES: dict[str, Table] = {t.name: t for t in _TABLES}


def empty(name: str) -> pa.Table:
    return TABLES[name].schema.empty_table()


def conform(name: str, data: pa.Table | list[dict]) -> pa.Table:
    """Rows or a table -> exactly the declared schema (column order and types); missing columns are null."""
    schema = TABLES[name].schema
    if isinstance(data, list):
        return pa.Table.from_pylist(data, schema=schema)
    columns = [
        data.column(f.name).cast(f.type) if f.name in data.column_names else pa.nulls(len(data), f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)
