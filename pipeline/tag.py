"""Find configured signals in utterances, fast enough for millions of turns a night.

Phrases and patterns match on lemma norms that the tokenizer alone yields (see
`pipeline/tag_lexicon.py`), so no tagger pass runs. The text is lower-cased and
stripped of punctuation first (same as ASR output), digits get word norms ("3" ->
"three"), and "gonna"/"wanna" are split into "going"/"want" + "to".

Speed: tokenizing is most of the cost, and most turns hold no signal. One
Aho-Corasick scan of each normalised turn (`pipeline/prefilter.py`) finds the texts
that the speaker's phrases, patterns and expressions need; a turn without any gets
no Doc at all, expressions run on the text before any tokenizing, and a pattern's
Matcher runs only where all its anchors occur. The scan only ever skips work that
could not match: `match(..., prefilter=False)` gives the same answers, and the tests
check that. `match_many` remembers the answers of the turns it has seen (a bounded
least-recently-used memo keyed on the text as said and the speaker's side): scripted lines
and courtesies repeat all night, and stay remembered while one-off turns come and go.

Negation (signals with `negation: exclude`, the default) is a cue scope, NegEx
style: a hit is dropped when a negation cue (not, n't, no, never, nothing, none,
nobody, without, neither, nor) comes at most 6 tokens before it, in the same
clause. A clause ends at , . ; : ! ? in the original text, at a conjunction
(but, and, so, because, though, although, however, anyway, actually, just) or courtesy
(thanks, cheers, bye: "no I don't need anything else thanks" thanks), or at
a new subject pronoun ("I'm not happy I want to cancel" still fires) unless it follows
a reporting verb ("I never said I wanted to cancel" does not), or at "this is"/"that's"/
"it's" ("a service that doesn't work this is ridiculous" still fires), or at a request to be
handed on ("let me", "get me", "put me": "nothing works let me speak to a manager" fires). "no"
before a pronoun or "thanks"/"problem"/"worries" is an interjection, "n't" before a pronoun a question
("why can't I cancel"), and "not a problem"/"not to worry"/"don't worry" set phrases, not cues.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import spacy
from spacy.matcher import Matcher, PhraseMatcher

from pipeline.config_yaml import with_line
from pipeline.metrics import metrics_by_call
from pipeline.prefilter import RegexPrefilter
from pipeline.signals import SIDES, Category, Signal, SignalSet
from pipeline.tag_lexicon import Lexicon, Words, normalise

__all__ = ["Hit", "Negated", "Tagger", "normalise", "tag_calls"]

NEGATION_CUES = {"not", "n't", "no", "never", "nothing", "none", "nobody", "without", "neither", "nor", "cannot"}
NOT_A_CUE_AFTER_NO = {"i", "you", "we", "they", "he", "she", "it", "thanks", "thank", "problem", "worries",
                      "doubt", "sir", "madam", "ma'am", "that's", "that"}
CLAUSE_WORDS = {"but", "and", "so", "because", "cause", "though", "although", "however", "anyway", "actually",
                "just", "otherwise", "instead",
                # courtesy opens a sentence of its own in unpunctuated speech: "nothing else thanks bye"
                "thanks", "thank", "cheers", "bye", "goodbye"}
# "not" + these is a set phrase, not a negation of what follows: "not a problem enjoy your day"
NOT_A_CUE_BEFORE = {("a", "problem"), ("to", "worry")}
NOT_A_CUE_BEFORE_WORD = {"worry"}            # "don't worry I'll block the card now"
# a request to be handed on opens a clause in unpunctuated speech: "nothing works let me speak to a manager"
ASKING = {"let", "get", "give", "put", "transfer", "connect", "pass", "take"}
SUBJECTS = {"i", "you", "we", "they", "he", "she"}
DEMONSTRATIVES = {"this", "that", "it"}      # "... doesn't work this is ridiculous": a new clause
COPULAS = {"is", "'s", "s", "was"}
REPORTING = {"say", "said", "think", "thought", "mean", "meant", "tell", "told", "know", "knew"}
SCOPE = 6
MEMO_SIZE = 1 << 16  # pattern-anchor combinations (63 occur in 200k synthetic turns) or calls' signal sets remembered
# Turns remembered with their hits: contact-centre speech repeats ("okay", "thank you", scripted openings and
# closings), and a repeat costs a look-up instead of a scan and a Doc. Least recently used go first, so the
# scripted lines stay while one-off turns pass through (emptying a full memo, as before, made them all misses
# again: at 1M synthetic turns 131k misses where LRU at this size has 93k, the distinct turns being 92k).
# At ~0.3 kB a turn: ~20 MB at most.
MEMO_TURNS = 1 << 16


@dataclass(frozen=True)
class Hit:
    signal_id: str
    matched_text: str
    word: int  # how many of the turn's words (split at whitespace, as said) come before the match: when it was said
    of: int    # the turn's words


@dataclass(frozen=True)
class Negated:
    signal_id: str
    matched_text: str
    cue: str


class Tagger:
    """Compiled signal library.

    Example:
        >>> tagger = Tagger(load_signals("signals"))
        >>> [h.signal_id for h in tagger.match("I want to cancel my subscription", "customer")[0]]
        ['cancel_intent']
    """

    def __init__(self, library: SignalSet):
        self.library = library
        self.nlp = spacy.blank("en")
        self.by_id = {s.id: s for s in library.signals}
        lexicon = Lexicon(self.nlp, library)
        self.phrases = PhraseMatcher(self.nlp.vocab, attr="NORM")
        self.patterns: dict[str, Matcher] = {}
        literals: dict[str, set[str]] = {}  # text -> the prefilter keys it is evidence for
        pattern_keys: list[tuple[str, list[str]]] = []
        self._unanchored: set[str] = set()
        for s in library.signals:
            self._add_phrases(s, lexicon, literals)
            pattern_keys += self._add_patterns(s, lexicon, literals)
        self._regex = [(s.id, re.compile(r)) for s in library.signals for r in s.regex]
        self._filter = RegexPrefilter([expr for _, expr in self._regex], literals)
        self._masks(library, pattern_keys)
        # A negation cue is a token whose text is a cue word or whose norm is "not": one of these substrings.
        cues = sorted(NEGATION_CUES | set(lexicon.surface("not")), key=len, reverse=True)
        self._cue = re.compile("|".join(map(re.escape, cues)))
        self._scopes: dict[str | None, tuple[int, frozenset[str]]] = {}
        self._complete: dict[int, frozenset[str]] = {}
        self._remembered = functools.lru_cache(maxsize=MEMO_TURNS)(self._hits)
        # what tag_calls needs of a signal per hit, in one look-up
        self.hit_rules = {s.id: (s.category, s.window) for s in library.signals}
        self._categories: dict[frozenset[str], tuple[Category, ...]] = {}
        self._ids = {self.nlp.vocab.strings[s.id]: s.id for s in library.signals}

    def __getstate__(self) -> dict:
        # the memo wraps a bound method, which pickle cannot take (a worker or task may get a Tagger): sent without
        # it, the copy starts with an empty one
        return {k: v for k, v in vars(self).items() if k != "_remembered"}

    def __setstate__(self, state: dict) -> None:
        vars(self).update(state)
        self._remembered = functools.lru_cache(maxsize=MEMO_TURNS)(self._hits)

    def _add_phrases(self, s: Signal, lexicon: Lexicon, literals: dict[str, set[str]]) -> None:
        """One PhraseMatcher for all signals; the prefilter key `<id>.phrases` says one of s's phrases may occur."""
        if s.phrases:
            docs = list(self.nlp.tokenizer.pipe(normalise(p) for p in s.phrases))
            self.phrases.add(s.id, docs)
            for text in {t for doc in docs for t in lexicon.phrase_literals(doc)}:
                literals.setdefault(text, set()).add(f"{s.id}.phrases")

    def _add_patterns(self, s: Signal, lexicon: Lexicon, literals: dict[str, set[str]]) -> list[tuple[str, list[str]]]:
        """A Matcher per signal, run only where every anchor of one of its patterns occurs: (id, anchor keys)."""
        if not s.patterns:
            return []
        canonical = [lexicon.canonical(p) for p in s.token_patterns()]
        self.patterns[s.id] = Matcher(self.nlp.vocab)
        self.patterns[s.id].add(s.id, canonical)
        keys = []
        for i, pattern in enumerate(canonical):
            anchors = lexicon.pattern_anchors(pattern)
            if not all(anchors):
                continue  # a token no normalised text can hold: the pattern never matches
            if not anchors:
                self._unanchored.add(s.id)
            for k, texts in enumerate(anchors):
                for text in texts:
                    literals.setdefault(text, set()).add(f"{s.id}.{i}.{k}")
            keys.append((s.id, [f"{s.id}.{i}.{k}" for k in range(len(anchors))]))
        return keys

    def _masks(self, library: SignalSet, pattern_keys: list[tuple[str, list[str]]]) -> None:
        """Prefilter bits: what each pattern needs, what any phrase needs, and all of a signal's bits."""
        bit = self._filter.key_bit
        self._pattern_masks = [(sid, sum(bit[k] for k in keys)) for sid, keys in pattern_keys if keys]
        self._pattern_bits = sum(mask for _, mask in self._pattern_masks)
        self._phrase_bits = sum(bit.get(f"{s.id}.phrases", 0) for s in library.signals)
        self._signal_bits = {s.id: bit.get(f"{s.id}.phrases", 0) for s in library.signals}
        for index, (sid, _) in enumerate(self._regex):
            self._signal_bits[sid] |= 1 << index
        for sid, mask in self._pattern_masks:
            self._signal_bits[sid] |= mask

    def _scope(self, speaker: str | None) -> tuple[int, frozenset[str]]:
        """Prefilter bits and unanchored pattern signals of the signals this speaker can fire (None: all)."""
        if speaker not in self._scopes:
            ids = [s.id for s in self.library.signals if speaker not in SIDES or s.speaker in ("any", speaker)]
            self._scopes[speaker] = (sum(self._signal_bits[i] for i in ids), frozenset(self._unanchored & set(ids)))
        return self._scopes[speaker]

    def match(self, text: str, speaker: str | None = None,
              prefilter: bool = True) -> tuple[list[Hit], list[Negated]]:
        """Signals that fire in one utterance for this speaker (None: any scope), and those a negation suppressed.

        prefilter=False runs every phrase, pattern and expression on a Doc: slow, the answer the prefilter
        must never change (the tests compare the two).
        """
        norm = normalise(text)
        if not prefilter:
            doc = self.nlp.tokenizer(norm)
            spans = [(self._ids[k], s, e) for k, s, e in self.phrases(doc)]
            spans += [(sid, s, e) for sid, matcher in self.patterns.items() for _, s, e in matcher(doc)]
            spans += self._token_spans(doc, self._regex_matches(norm, -1))
            return self._resolve(doc, norm, text, speaker, spans)
        mask, unanchored = self._scope(speaker)
        return self._match_norm(norm, text, speaker, self._filter.candidates(norm) & mask, unanchored)

    def match_many(self, texts: list[str], speakers: list[str]):
        """Yield (index, hits) for utterances with at least one hit; negated ones are dropped."""
        remembered = self._remembered
        for i, text in enumerate(texts):
            # Answers depend on the text as said (matched words, punctuation) and on whose signals may fire:
            # every speaker outside SIDES may fire all of them, so they share one entry.
            speaker = speakers[i]
            hits = remembered(text, speaker if speaker in SIDES else None)
            if hits:
                yield i, list(hits)

    def _hits(self, text: str, speaker: str | None) -> tuple[Hit, ...]:
        norm = normalise(text)
        mask, unanchored = self._scope(speaker)
        present = self._filter.candidates(norm) & mask
        # most turns stop here: no literal any in-scope phrase, pattern or expression needs is in the text
        if not (present or unanchored):
            return ()
        return tuple(self._match_norm(norm, text, speaker, present, unanchored)[0])

    def _complete_patterns(self, bits: int) -> frozenset[str]:
        """Signals with a pattern all of whose anchors are in bits. Memoised: the anchors found in a turn come in
        few combinations, and checking every pattern's mask cost more than the rest of a turn's bookkeeping."""
        found = self._complete.get(bits)
        if found is None:
            found = frozenset(sid for sid, mask in self._pattern_masks if bits & mask == mask)
            if len(self._complete) < MEMO_SIZE:
                self._complete[bits] = found
        return found

    def _match_norm(self, norm: str, original: str, speaker: str | None, present: int,
                    unanchored: frozenset[str]) -> tuple[list[Hit], list[Negated]]:
        """Matching proper, given the prefilter's bits (already limited to the speaker's signals)."""
        expressions = self._regex_matches(norm, present) if present & self._filter.expression_bits else []
        patterns = unanchored
        if present & self._pattern_bits:
            patterns = unanchored | self._complete_patterns(present & self._pattern_bits)
        phrases = present & self._phrase_bits
        if not (expressions or patterns or phrases):
            return [], []  # tokenizing is most of the cost: only turns that can match get a Doc
        doc = self.nlp.tokenizer(norm)
        spans = [(self._ids[k], s, e) for k, s, e in self.phrases(doc)] if phrases else []
        for signal_id in patterns:
            spans += [(signal_id, s, e) for _, s, e in self.patterns[signal_id](doc)]
        spans += self._token_spans(doc, expressions)
        return self._resolve(doc, norm, original, speaker, spans) if spans else ([], [])

    @staticmethod
    def _token_spans(doc, char_spans: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
        spans = []
        for signal_id, start, end in char_spans:
            span = doc.char_span(start, end, alignment_mode="expand")
            if span is not None:
                spans.append((signal_id, span.start, span.end))
        return spans

    def _regex_matches(self, norm: str, present: int) -> list[tuple[str, int, int]]:
        """(signal id, start char, end char) of every match of the expressions the prefilter let through."""
        found = []
        bits = present & self._filter.expression_bits
        while bits:
            low = bits & -bits
            bits ^= low
            signal_id, expr = self._regex[low.bit_length() - 1]
            found += [(signal_id, m.start(), m.end()) for m in expr.finditer(norm)]
        return found

    def _resolve(self, doc, norm: str, original: str, speaker: str | None,
                 spans: list) -> tuple[list[Hit], list[Negated]]:
        """One hit per signal (its first, longest span) unless negated; spans of other speakers' signals dropped."""
        hits, negated, seen = [], [], set()
        words = None
        for signal_id, start, end in sorted(spans, key=lambda x: (x[1], x[1] - x[2], x[0])):  # longest first
            signal = self.by_id[signal_id]
            if signal_id in seen or (speaker in SIDES and signal.speaker not in ("any", speaker)):
                continue
            words = words or Words(doc, norm, original)
            text = words.original(start, end)
            cue = self._negation(doc, start, words) if signal.negation == "exclude" else None
            if cue:
                if all(n.signal_id != signal_id for n in negated):
                    negated.append(Negated(signal_id, text, cue))
            else:
                seen.add(signal_id)
                hits.append(Hit(signal_id, text, words.before(start), words.count))
        return hits, negated

    def _negation(self, doc, start: int, words: Words) -> str | None:
        if not self._cue.search(words.norm, 0, doc[start].idx):
            return None  # most hits: no cue anywhere before them, so no token-by-token scope walk
        if doc[start].lower_ in CLAUSE_WORDS:  # the match itself opens a clause: "..., just cancel it"
            return None
        if _asks(doc, start):  # and so does a request: "not happy at all get me a manager"
            return None
        for i in range(start - 1, max(-1, start - 1 - SCOPE), -1):
            norm = doc[i].norm_
            lower = doc[i].lower_
            if lower in CLAUSE_WORDS or words.clause_break(i, start):
                return None
            if lower in SUBJECTS and i > 0 and doc[i - 1].norm_ != "not" and doc[i - 1].lower_ not in REPORTING:
                return None
            if lower in DEMONSTRATIVES and i + 1 < start and doc[i + 1].lower_ in COPULAS:
                return None
            if lower == "me" and i > 0 and _asks(doc, i - 1):
                return None
            if lower in NEGATION_CUES or norm == "not":
                following = doc[i + 1].lower_ if i + 1 < len(doc) else ""
                after = doc[i + 2].lower_ if i + 2 < len(doc) else ""
                if (lower == "no" and following in NOT_A_CUE_AFTER_NO) or (norm == "not" and (
                        following in SUBJECTS or following in NOT_A_CUE_BEFORE_WORD
                        or (following, after) in NOT_A_CUE_BEFORE)):
                    continue  # "no, I ..." is an interjection; "can't I ..." a question; "not a problem" a set phrase
                return doc[i].text
        return None

    def categories(self, present: set[str], metrics: dict | None = None) -> list[Category]:
        """The categories a call with these signals (and metrics) falls in. Memoised for those of signals only:
        calls share few sets of signals."""
        key = frozenset(present)
        found = self._categories.get(key)
        if found is None:
            found = tuple(c for c in self.library.categories if not c.measures and c.applies(key))
            if len(self._categories) < MEMO_SIZE:
                self._categories[key] = found
        if metrics is not None:
            found += tuple(c for c in self.library.categories if c.measures and c.applies(key, metrics))
        return list(found)

    def check_examples(self) -> list[str]:
        """Every signal must fire on its examples and stay silent on its counter-examples (each problem as
        `file:line: signals[0].examples[1]: ...`, the line of the example)."""
        problems = []
        for s in self.library.signals:
            speaker, where = s.speaker if s.speaker != "any" else "unknown", self.library.sources[s.id]
            for k, text in enumerate(s.examples):
                hits, negated = self.match(text, speaker)
                if s.id not in {h.signal_id for h in hits}:
                    why = next((f" (negated by {n.cue!r})" for n in negated if n.signal_id == s.id), "")
                    problems.append(with_line(f"{where}.examples[{k}]: {s.id} does not match{why}: {text!r}"))
            for k, text in enumerate(s.counter_examples):
                hits, _ = self.match(text, speaker)
                if hit := next((h for h in hits if h.signal_id == s.id), None):
                    problems.append(with_line(f"{where}.counter_examples[{k}]: {s.id} matches on "
                                              f"{hit.matched_text!r}: {text!r}"))
        return problems


def tag_calls(tagger: Tagger, utterances: list[dict], durations: dict[str, float],
              word_starts: Sequence | None = None) -> tuple[list[dict], list[dict]]:
    """The `signal_hits` and `call_categories` rows of whole calls (every utterance of each call given).

    utterances need call_id, utt_idx, speaker, start_s, end_s, text, call_date; durations maps call_id to seconds.
    A hit's start_s is when its first word was said: word_starts[i] holds the start times of utterances[i]'s words
    (None: their `words`, if any).
    """
    hits = []
    dates = {u["call_id"]: u["call_date"] for u in utterances}
    present: dict[str, set[str]] = {call_id: set() for call_id in dates}
    texts, speakers = [u["text"] or "" for u in utterances], [u["speaker"] for u in utterances]
    rules = tagger.hit_rules
    for i, found in tagger.match_many(texts, speakers):
        u = utterances[i]
        call_id = u["call_id"]
        signals = present[call_id]
        for hit in found:
            category, window = rules[hit.signal_id]
            start_s = u["start_s"] if not hit.word else _said_at(
                u, hit, word_starts[i] if word_starts is not None else u.get("words"))
            if window is not None and not _in_window(window, start_s, durations.get(call_id, 0.0)):
                continue
            hits.append({"call_id": call_id, "signal_id": hit.signal_id, "utt_idx": u["utt_idx"],
                         "start_s": start_s, "speaker": u["speaker"], "matched_text": hit.matched_text,
                         "category": category, "call_date": u["call_date"]})
            signals.add(hit.signal_id)
    measured = metrics_by_call(utterances, durations) if any(c.measures for c in tagger.library.categories) else {}
    categories = [{"call_id": call_id, "category_id": c.id, "call_date": dates[call_id]}
                  for call_id, ids in present.items() for c in tagger.categories(ids, measured.get(call_id))]
    return hits, categories


def _said_at(u: dict, hit: Hit, said: Sequence | None) -> float:
    """When a hit's first word was said: its own time when the turn has one per word (ASR: `said`, the words or
    their start times), else the turn's words spread evenly over it, as call metrics take them (a compliance window
    tests the phrase, not the turn it ends)."""
    if said is not None and len(said) == hit.of:
        word = said[min(hit.word, hit.of - 1)]
        return float(word["start_s"] if isinstance(word, dict) else word)
    start, end = u["start_s"], u.get("end_s")
    return start if end is None or end <= start else round(start + hit.word * (end - start) / hit.of, 3)


def _in_window(window, start_s: float, duration_s: float) -> bool:
    if window is None:
        return True
    if window.first_s is not None:
        return start_s <= window.first_s
    return start_s >= duration_s - window.last_s


def _asks(doc, i: int) -> bool:
    """Whether doc[i] opens a request to be handed on ("let me", "get me"), not an infinitive ("no need to get me
    a manager", where the negation holds)."""
    return (doc[i].lower_ in ASKING and i + 1 < len(doc) and doc[i + 1].lower_ == "me"
            and (i == 0 or doc[i - 1].lower_ != "to"))
