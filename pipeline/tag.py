"""Find configured signals in utterances, fast enough for millions of turns a night.

How phrases match on lemmas without a tagger pass per utterance: the phrase
vocabulary is lemmatised once, and the *lexeme* norm of every inflected form of
every vocabulary word is set to its lemma ("cancelling", "cancelled" -> "cancel").
Lexemes are shared by every token, so the tokenizer alone yields lemma norms and
spaCy's PhraseMatcher/Matcher match on NORM at tokenizer speed. The text is
lower-cased and stripped of punctuation first (same as ASR output), digits get
word norms ("3" -> "three"), and "gonna"/"wanna" are already split by spaCy's
tokenizer exceptions into "going"/"want" + "to".

Negation (signals with `negation: exclude`, the default) is a cue scope, NegEx
style: a hit is dropped when a negation cue (not, n't, no, never, nothing, none,
nobody, without, neither, nor) comes at most 6 tokens before it, in the same
clause. A clause ends at , . ; : ! ? in the original text, at a conjunction
(but, and, so, because, though, although, however, anyway, actually, just), or at
a new subject pronoun ("I'm not happy I want to cancel" still fires) unless it follows
a reporting verb ("I never said I wanted to cancel" does not), or at "this is"/"that's"/
"it's" ("a service that doesn't work this is ridiculous" still fires). "no" before a pronoun or
"thanks"/"problem"/"worries" is an interjection, and "n't" before a pronoun a question
("why can't I cancel"), not cues.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import spacy
from lemminflect import getAllInflections, getAllLemmas
from spacy.attrs import NORM, ORTH
from spacy.matcher import Matcher, PhraseMatcher

from pipeline.prefilter import RegexPrefilter
from pipeline.signals import Category, SignalSet

NON_WORD = re.compile(r"[^\w']+")
WORD_OR_MARK = re.compile(r"[\w']+|[,.;:!?]")
NEGATION_CUES = {"not", "n't", "no", "never", "nothing", "none", "nobody", "without", "neither", "nor", "cannot"}
NOT_A_CUE_AFTER_NO = {"i", "you", "we", "they", "he", "she", "it", "thanks", "thank", "problem", "worries",
                      "doubt", "sir", "madam", "ma'am", "that's", "that"}
CLAUSE_WORDS = {"but", "and", "so", "because", "cause", "though", "although", "however", "anyway", "actually",
                "just", "otherwise", "instead"}
SUBJECTS = {"i", "you", "we", "they", "he", "she"}
DEMONSTRATIVES = {"this", "that", "it"}      # "... doesn't work this is ridiculous": a new clause
COPULAS = {"is", "'s", "s", "was"}
REPORTING = {"say", "said", "think", "thought", "mean", "meant", "tell", "told", "know", "knew"}
SCOPE = 6
ANCHORS = 2  # anchor tokens per pattern, rarest first; all must occur for the pattern to run
LEMMA_PREFERENCE = ("VERB", "NOUN", "ADJ", "ADV", "PROPN", "AUX")
NUMBERS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
           "sixteen seventeen eighteen nineteen twenty").split()
ORDINALS = ("zeroth first second third fourth fifth sixth seventh eighth ninth tenth").split()
# Spoken contractions spaCy's English exceptions do not split (it already splits gonna/gotta).
SPOKEN = {"wanna": ("wan", "want", "na", "to"), "gimme": ("gim", "give", "me", "me"),
          "lemme": ("lem", "let", "me", "me"), "kinda": ("kin", "kind", "da", "of"),
          "hafta": ("haf", "have", "ta", "to"), "outta": ("out", "out", "ta", "of")}


def normalise(text: str) -> str:
    """What matching sees: lower case, no punctuation, single spaces (ASR output looks like this)."""
    return NON_WORD.sub(" ", text.replace("\u2019", "'").lower()).strip()


@dataclass(frozen=True)
class Hit:
    signal_id: str
    matched_text: str
    start_token: int


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
        self._lexicon(library)
        self.phrases = PhraseMatcher(self.nlp.vocab, attr="NORM")
        self.patterns: dict[str, Matcher] = {}
        for s in library.signals:
            if s.phrases:
                self.phrases.add(s.id, list(self.nlp.tokenizer.pipe(normalise(p) for p in s.phrases)))
            if s.patterns:
                self.patterns[s.id] = Matcher(self.nlp.vocab)
                self.patterns[s.id].add(s.id, [self._canonical(p) for p in s.token_patterns()])
        self._unanchored, anchor_literals, pattern_keys = self._pattern_anchors(library)
        self._regex = [(s.id, re.compile(r)) for s in library.signals for r in s.regex]
        self._regex_filter = RegexPrefilter([expr for _, expr in self._regex], anchor_literals)
        bit = self._regex_filter.key_bit
        self._pattern_masks = [(sid, sum(bit[k] for k in keys)) for sid, keys in pattern_keys]
        self._for_speaker = {who: {s.id for s in library.signals if s.speaker in ("any", who)}
                             for who in ("agent", "customer", "unknown")}
        self._ids = {self.nlp.vocab.strings[s.id]: s.id for s in library.signals}

    def _lexicon(self, library: SignalSet) -> None:
        for text, (a, a_norm, b, b_norm) in SPOKEN.items():
            self.nlp.tokenizer.add_special_case(text, [{ORTH: a, NORM: a_norm}, {ORTH: b, NORM: b_norm}])
        words = {t.text for s in library.signals for p in s.phrases for t in self.nlp.tokenizer(normalise(p))}
        words |= {v for s in library.signals for pat in s.token_patterns() for tok in pat
                  for v in _values(tok.get("NORM"))}
        canonical = {}
        for word in sorted(words):
            lemma = _lemma(word)
            for form in {word, lemma} | {f for forms in getAllInflections(lemma).values() for f in forms}:
                canonical.setdefault(form, lemma)
        canonical.update({str(i): w for i, w in enumerate(NUMBERS)})
        canonical.update({f"{i}{s}": w for i, (w, s) in enumerate(zip(ORDINALS, "th st nd rd th th th th th th".split()))})
        self._forms: dict[str, set[str]] = {}
        for form, lemma in canonical.items():
            self.nlp.vocab[form].norm_ = lemma
            self._forms.setdefault(lemma, set()).add(form)
        # Tokenizer exceptions ("gonna" -> "gon"+"na") carry their own norms: map them the same way.
        rules = {}
        for text, tokens in self.nlp.tokenizer.rules.items():
            rules[text] = [{**t, NORM: canonical.get(t[NORM], t[NORM])} if NORM in t else t for t in tokens]
            for t in rules[text]:
                if NORM in t:
                    self._forms.setdefault(t[NORM], set()).add(t[ORTH])
        self.nlp.tokenizer.rules = rules

    def _pattern_anchors(self, library: SignalSet) -> tuple[set[str], dict[str, set[str]], list]:
        """spaCy's Matcher walks every token in Python: run a signal's patterns only where they can match.

        A pattern's anchors are its two rarest required tokens with fixed NORM or LOWER values (fewest stop
        words, then fewest values); the pattern can only match where both occur. Each anchor becomes the set
        of surface forms that give its values (every inflection of a lemma), found by the same single
        Aho-Corasick scan as the regex literals; a substring hit is only a necessary condition, which is all a
        prefilter needs. Returns the signals with a pattern that has no anchor (they always run), the
        literal -> anchor-key map, and each pattern's (signal id, anchor keys).
        """
        stop = self.nlp.Defaults.stop_words
        unanchored, literals, pattern_keys = set(), {}, []
        for s in library.signals:
            for i, pattern in enumerate(self._canonical(p) for p in s.token_patterns()):
                tokens = [(attr, _values(t[attr])) for t in pattern for attr in ("NORM", "LOWER")
                          if t.get("OP") in (None, "+") and _values(t.get(attr))]
                if not tokens:
                    unanchored.add(s.id)
                    continue
                rarest = sorted(tokens, key=lambda a: (sum(v in stop for v in a[1]) / len(a[1]), len(a[1])))[:ANCHORS]
                keys = []
                for k, (attr, values) in enumerate(rarest):
                    key = f"{s.id}.{i}.{k}"
                    for v in values:
                        for form in ({v} | self._forms.get(v, set())) if attr == "NORM" else {v}:
                            literals.setdefault(form, set()).add(key)
                    keys.append(key)
                pattern_keys.append((s.id, keys))
        return unanchored, literals, pattern_keys

    def _canonical(self, pattern: list[dict]) -> list[dict]:
        """NORM values as lemmas, the way the lexicon normalises text ({LEMMA: plans} means plan)."""
        def canon(value):
            if isinstance(value, str):
                return self.nlp.vocab[value].norm_
            if isinstance(value, dict):
                return {k: [canon(x) for x in v] if isinstance(v, list) else v for k, v in value.items()}
            return value
        return [{**t, "NORM": canon(t["NORM"])} if "NORM" in t else t for t in pattern]

    def match(self, text: str, speaker: str | None = None) -> tuple[list[Hit], list[Negated]]:
        """Signals that fire in one utterance for this speaker (None: any scope), and those a negation suppressed."""
        norm = normalise(text)
        doc = self.nlp.tokenizer(norm)
        present = self._regex_filter.candidates(norm)
        return self._match_doc(doc, norm, text, speaker, self.phrases(doc), present, self._patterns_for(present))

    def match_many(self, texts: list[str], speakers: list[str], batch_size: int = 2000):
        """Yield (index, hits) for utterances with at least one hit; negated ones are dropped."""
        norms = [normalise(t) for t in texts]
        scan, phrases, expressions = self._regex_filter.candidates, self.phrases, self._regex_filter.expression_bits
        for i, doc in enumerate(self.nlp.tokenizer.pipe(norms, batch_size=batch_size)):
            found, present = phrases(doc), scan(norms[i])
            patterns = self._patterns_for(present)
            # most turns stop here: no phrase, no expression worth running, no pattern with all its anchors
            if found or present & expressions or patterns:
                hits, _ = self._match_doc(doc, norms[i], texts[i], speakers[i], found, present, patterns)
                if hits:
                    yield i, hits

    def _patterns_for(self, present: int) -> set[str]:
        """Signals whose token patterns can match, given the prefilter's bitmask for the utterance."""
        return self._unanchored | {sid for sid, mask in self._pattern_masks if present & mask == mask}

    def _match_doc(self, doc, norm: str, original: str, speaker: str | None, found: list, present: int,
                   patterns: set[str]) -> tuple[list[Hit], list[Negated]]:
        allowed = self._for_speaker.get(speaker)  # None: every signal; else only those in this speaker's scope
        spans = [(self._ids[k], s, e) for k, s, e in found]
        if patterns:
            for signal_id in patterns if allowed is None else patterns & allowed:
                spans += [(signal_id, s, e) for _, s, e in self.patterns[signal_id](doc)]
        if self._regex:
            spans += self._regex_spans(doc, norm, allowed, present)
        if not spans:
            return [], []
        hits, negated, seen = [], [], set()
        words = None
        for signal_id, start, end in sorted(spans, key=lambda x: (x[1], x[1] - x[2], x[0])):  # longest first
            signal = self.by_id[signal_id]
            if signal_id in seen or (speaker is not None and signal.speaker not in ("any", speaker)):
                continue
            words = words or _Words(doc, norm, original)
            text = words.original(start, end)
            cue = self._negation(doc, start, words) if signal.negation == "exclude" else None
            if cue:
                if all(n.signal_id != signal_id for n in negated):
                    negated.append(Negated(signal_id, text, cue))
            else:
                seen.add(signal_id)
                hits.append(Hit(signal_id, text, start))
        return hits, negated

    def _regex_spans(self, doc, norm: str, allowed: set[str] | None, present: int) -> list[tuple[str, int, int]]:
        spans = []
        bits = present & self._regex_filter.expression_bits
        while bits:
            low = bits & -bits
            bits ^= low
            signal_id, expr = self._regex[low.bit_length() - 1]
            if allowed is not None and signal_id not in allowed:
                continue
            for m in expr.finditer(norm):
                span = doc.char_span(m.start(), m.end(), alignment_mode="expand")
                if span is not None:
                    spans.append((signal_id, span.start, span.end))
        return spans

    def _negation(self, doc, start: int, words: _Words) -> str | None:
        if doc[start].lower_ in CLAUSE_WORDS:  # the match itself opens a clause: "..., just cancel it"
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
            if lower in NEGATION_CUES or norm == "not":
                following = doc[i + 1].lower_ if i + 1 < len(doc) else ""
                if (lower == "no" and following in NOT_A_CUE_AFTER_NO) or (norm == "not" and following in SUBJECTS):
                    continue  # "no, I ..." is an interjection; "can't I ..." is a question
                return doc[i].text
        return None

    def categories(self, present: set[str]) -> list[Category]:
        return [c for c in self.library.categories if c.applies(present)]

    def check_examples(self) -> list[str]:
        """Every signal must fire on its examples and stay silent on its counter-examples."""
        problems = []
        for s in self.library.signals:
            speaker = s.speaker if s.speaker != "any" else "unknown"
            for text in s.examples:
                hits, negated = self.match(text, speaker)
                if s.id not in {h.signal_id for h in hits}:
                    why = next((f" (negated by {n.cue!r})" for n in negated if n.signal_id == s.id), "")
                    problems.append(f"{self.library.sources[s.id]} ({s.id}): example does not match{why}: {text!r}")
            for text in s.counter_examples:
                hits, _ = self.match(text, speaker)
                hit = next((h for h in hits if h.signal_id == s.id), None)
                if hit:
                    problems.append(f"{self.library.sources[s.id]} ({s.id}): counter-example matches "
                                    f"on {hit.matched_text!r}: {text!r}")
        return problems


class _Words:
    """Maps tokens of the normalised text back to the original words and punctuation."""

    def __init__(self, doc, norm: str, original: str):
        self.doc, self.norm = doc, norm
        self.items = [(m.group(), m.start(), m.end()) for m in WORD_OR_MARK.finditer(original.replace("\u2019", "'"))]
        self.word_pos = [k for k, (w, _, _) in enumerate(self.items) if w not in ",.;:!?"]
        self.original_text = original

    def _word_of(self, token_index: int) -> int:
        return self.norm.count(" ", 0, self.doc[token_index].idx)

    def original(self, start: int, end: int) -> str:
        first, last = self._word_of(start), self._word_of(end - 1)
        if last >= len(self.word_pos):
            return self.doc[start:end].text
        return self.original_text[self.items[self.word_pos[first]][1]:self.items[self.word_pos[last]][2]]

    def clause_break(self, token_index: int, start: int) -> bool:
        a, b = self._word_of(token_index), self._word_of(start)
        if b >= len(self.word_pos) or a == b:
            return False
        return any(w in ",.;:!?" for w, _, _ in self.items[self.word_pos[a] + 1:self.word_pos[b]])


def _lemma(word: str) -> str:
    lemmas = getAllLemmas(word)
    for pos in LEMMA_PREFERENCE:
        if pos in lemmas:
            return lemmas[pos][0]
    return word


def _values(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [v for vs in value.values() if isinstance(vs, list) for v in vs if isinstance(v, str)]
    return []


def tag_calls(tagger: Tagger, utterances: list[dict], durations: dict[str, float]) -> tuple[list[dict], list[dict]]:
    """The `signal_hits` and `call_categories` rows of whole calls (every utterance of each call given).

    utterances need call_id, utt_idx, speaker, start_s, text, call_date; durations maps call_id to seconds.
    """
    hits, present, dates = [], {}, {}
    for u in utterances:
        present.setdefault(u["call_id"], set())
        dates[u["call_id"]] = u["call_date"]
    texts, speakers = [u["text"] or "" for u in utterances], [u["speaker"] for u in utterances]
    for i, found in tagger.match_many(texts, speakers):
        u = utterances[i]
        for hit in found:
            signal = tagger.by_id[hit.signal_id]
            if not _in_window(signal.window, u["start_s"], durations.get(u["call_id"], 0.0)):
                continue
            hits.append({"call_id": u["call_id"], "signal_id": hit.signal_id, "utt_idx": u["utt_idx"],
                         "start_s": u["start_s"], "speaker": u["speaker"], "matched_text": hit.matched_text,
                         "category": signal.category, "call_date": u["call_date"]})
            present[u["call_id"]].add(hit.signal_id)
    categories = [{"call_id": call_id, "category_id": c.id, "call_date": dates[call_id]}
                  for call_id, ids in present.items() for c in tagger.categories(ids)]
    return hits, categories


def _in_window(window, start_s: float, duration_s: float) -> bool:
    if window is None:
        return True
    if window.first_s is not None:
        return start_s <= window.first_s
    return start_s >= duration_s - window.last_s
