"""Topic terms made of a forgotten caller's words, taken out when their calls are forgotten.

A topic's label and top terms are the words that set its turns apart, so a small cluster of one person's calls
is labelled with what only they said: four calls of "this is Zebulon Quackenbush, the router blinks orange" made
a topic "blink orange, quackenbush router, zebulon", kept after `callintel forget` removed the calls. A term
goes when one of its words was said on the forgotten calls and is said on fewer than KEEP_CALLS of the calls
that remain (a word many callers use, "router", is nobody's); its examples go when they are a forgotten turn.
"""
from __future__ import annotations

import duckdb
import pyarrow as pa

KEEP_CALLS = 3  # a word said on this many remaining calls is not one caller's
# a term's word is a lemma ("blink"); a remaining call says it when it says a word starting with it, up to this
# many letters longer ("blinks", "blinking")
INFLECTION = 3


def scrub(topics: list[dict], said: set[str], remaining: pa.Table) -> list[dict]:
    """topics (rows of every model version) without the forgotten turns (`said`) among their examples, nor the
    terms of their label and top_terms made of a forgotten caller's own words; remaining: the utterances left
    (call_id, text)."""
    from pipeline.topic_text import lemmatise  # spaCy: loaded only when a forget touches topics

    heard = {w for lemmas in lemmatise(sorted(said)) for w in lemmas.split()}
    words = {w for row in topics for term in _terms(row) for w in term.split() if w in heard}
    common = _said_on_calls(words, remaining)

    def kept(term: str) -> bool:
        return all(w not in words or w in common for w in term.split())

    for row in topics:
        row["examples"] = [e for e in row.get("examples") or [] if e not in said]
        row["top_terms"] = [t for t in row.get("top_terms") or [] if kept(t)]
        row["label"] = ", ".join(t for t in row["label"].split(", ") if kept(t)) or "(no terms)"
    return topics


def _terms(row: dict) -> list[str]:
    return list(row.get("top_terms") or []) + row["label"].split(", ")


def _said_on_calls(words: set[str], remaining: pa.Table) -> set[str]:
    """Of these words (lemmas), those said on KEEP_CALLS or more of the remaining calls: one pass over their
    text, matching each word against the vocabulary said, not against every turn."""
    if not words or not len(remaining):
        return set()
    wanted = pa.table({"w": sorted(words)})
    turns = remaining.select(["call_id", "text"])
    with duckdb.connect() as con:
        con.register("turns", turns)
        con.register("wanted", wanted)
        rows = con.execute(f"""
            WITH said AS (SELECT DISTINCT call_id, unnest(regexp_extract_all(lower(text), '[a-z'']+')) AS t
                          FROM turns),
                 vocab AS (SELECT DISTINCT t FROM said),
                 match AS (SELECT w, t FROM wanted JOIN vocab ON starts_with(t, w)
                           AND length(t) - length(w) <= {INFLECTION})
            SELECT w FROM said JOIN match USING (t) GROUP BY w HAVING count(DISTINCT call_id) >= {KEEP_CALLS}
        """).fetchall()
    return {w for (w,) in rows}
