"""The tagger's compiled vocabulary: lemma norms on lexemes, and the texts its prefilter looks for.

Lemmas without a tagger pass: the phrase vocabulary is lemmatised once (lemminflect), and the
*lexeme* norm of every inflected form of every vocabulary word is set to its lemma ("cancelling",
"cancelled" -> "cancel"). Lexemes are shared by every token, so the tokenizer alone yields lemma
norms and spaCy's PhraseMatcher/Matcher match on NORM at tokenizer speed.

Prefilter literals: tokenizing is most of the cost of tagging a turn, and most turns hold no
signal, so a turn only gets a Doc when an Aho-Corasick scan of its normalised text finds a string
that some phrase, pattern or expression needs. A token of the normalised text is a substring of it
and neighbouring tokens are joined by one space or nothing ("do" + "n't"), so a run of phrase (or
pattern) tokens can only match as one of the strings made of their possible surface forms: every
text whose lexeme norm, tokenizer-exception norm or lower case is the value wanted. Finding one is
a necessary condition, never a sufficient one: results are those of matching every turn.
"""
from __future__ import annotations

import re

from lemminflect import getAllInflections, getAllLemmas
from spacy.attrs import NORM, ORTH
from spacy.lang.norm_exceptions import BASE_NORMS

from pipeline.signals import SignalSet

NON_WORD = re.compile(r"[^\w']+")
WORD_OR_MARK = re.compile(r"[\w']+|[,.;:!?]")
NORMAL_ASCII = re.compile(r"[a-z0-9_']+(?: [a-z0-9_']+)*")
NORMAL_WORDS = re.compile(r"[\w']+(?: [\w']+)*")
LEMMA_PREFERENCE = ("VERB", "NOUN", "ADJ", "ADV", "PROPN", "AUX")
NUMBERS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
           "sixteen seventeen eighteen nineteen twenty").split()
ORDINALS = ("zeroth first second third fourth fifth sixth seventh eighth ninth tenth").split()
# Spoken contractions spaCy's English exceptions do not split (it already splits gonna/gotta).
SPOKEN = {"wanna": ("wan", "want", "na", "to"), "gimme": ("gim", "give", "me", "me"),
          "lemme": ("lem", "let", "me", "me"), "kinda": ("kin", "kind", "da", "of"),
          "hafta": ("haf", "have", "ta", "to"), "outta": ("out", "out", "ta", "of")}
MAX_LITERALS = 128  # strings per run of words: longer runs are rarer, but each form multiplies the strings
ANCHORS = 2         # runs of required tokens per pattern; all must occur for the pattern to run


def normalise(text: str) -> str:
    """What matching sees: lower case, no punctuation, single spaces (ASR output looks like this)."""
    lower = text.lower()
    if NORMAL_ASCII.fullmatch(lower):  # ASR output usually is already: skip the substitution
        return lower
    return NON_WORD.sub(" ", text.replace("\u2019", "'").lower()).strip()


class Lexicon:
    """Sets lemma norms in nlp's vocabulary for the library's words; knows every surface form of a norm."""

    def __init__(self, nlp, library: SignalSet):
        self.nlp = nlp
        for text, (a, a_norm, b, b_norm) in SPOKEN.items():
            nlp.tokenizer.add_special_case(text, [{ORTH: a, NORM: a_norm}, {ORTH: b, NORM: b_norm}])
        canonical = self._canonical_forms(library)
        self.forms: dict[str, set[str]] = {}
        for form, lemma in canonical.items():
            nlp.vocab[form].norm_ = lemma
            self.forms.setdefault(lemma, set()).add(form)
        # Tokenizer exceptions ("gonna" -> "gon"+"na") carry their own norms: map them the same way.
        rules = {}
        for text, tokens in nlp.tokenizer.rules.items():
            rules[text] = [{**t, NORM: canonical.get(t[NORM], t[NORM])} if NORM in t else t for t in tokens]
            for t in rules[text]:
                if NORM in t:
                    self.forms.setdefault(t[NORM], set()).add(t[ORTH])
        nlp.tokenizer.rules = rules
        # Any other lexeme's norm is its lower-cased text, or one of spaCy's base norms ("\u2019s" -> "'s").
        for text, norm in BASE_NORMS.items():
            self.forms.setdefault(norm, set()).add(text.lower())

    def _canonical_forms(self, library: SignalSet) -> dict[str, str]:
        """Every inflection of every library word (and digits, ordinals) -> the norm it should get."""
        words = {t.text for s in library.signals for p in s.phrases for t in self.nlp.tokenizer(normalise(p))}
        words |= {v for s in library.signals for pat in s.token_patterns() for tok in pat
                  for v in _values(tok.get("NORM"))}
        canonical = {}
        for word in sorted(words):
            lemma = _lemma(word)
            for form in {word, lemma} | {f for forms in getAllInflections(lemma).values() for f in forms}:
                canonical.setdefault(form, lemma)
        # "'s" is spaCy's own norm for "is", "has" and the possessive alike, so a phrase "the bill is wrong" missed
        # "the bill's wrong", as ASR writes it; read as "is" ("'re" and "'m" already are), it matches.
        canonical["'s"] = _lemma("is")
        canonical.update({str(i): w for i, w in enumerate(NUMBERS)})
        suffixes = "th st nd rd th th th th th th".split()
        canonical.update({f"{i}{s}": w for i, (w, s) in enumerate(zip(ORDINALS, suffixes))})
        return canonical

    def canonical(self, pattern: list[dict]) -> list[dict]:
        """NORM values as lemmas, the way the lexicon normalises text ({LEMMA: plans} means plan)."""
        def canon(value):
            if isinstance(value, str):
                return self.nlp.vocab[value].norm_
            if isinstance(value, dict):
                return {k: [canon(x) for x in v] if isinstance(v, list) else v for k, v in value.items()}
            return value
        return [{**t, "NORM": canon(t["NORM"])} if "NORM" in t else t for t in pattern]

    def surface(self, norm: str) -> list[str]:
        """Every text a token of a normalised utterance can have for its NORM to be norm."""
        return sorted(f for f in {norm} | self.forms.get(norm, set()) if _can_occur(f))

    def phrase_literals(self, doc) -> set[str]:
        """Texts one of which every match of the phrase (a tokenized, normalised phrase) contains."""
        return _rarest_run([self.surface(t.norm_) for t in doc])

    def pattern_anchors(self, pattern: list[dict]) -> list[set[str]]:
        """Up to ANCHORS sets of texts, each of which every match of the (canonical) pattern contains one of.

        Runs are consecutive tokens that must occur once with fixed NORM or LOWER values; a `+` token is a
        run of its own (it may repeat). No anchors: the pattern has no required fixed token.
        """
        runs, run = [], []
        for token in pattern:
            forms = self._token_forms(token)
            if forms is not None and token.get("OP") is None:
                run.append(forms)
                continue
            runs.append(run)
            run = []
            if forms is not None and token.get("OP") == "+":
                runs.append([forms])
        runs.append(run)
        found = [_rarest_run(r) for r in runs if r]
        return sorted(found, key=_rarity, reverse=True)[:ANCHORS]

    def _token_forms(self, token: dict) -> list[str] | None:
        """Texts the token can have, or None when it may be any text."""
        options = []
        if _required(token.get("NORM")):
            options.append({f for v in _required(token["NORM"]) for f in self.surface(v)})
        if _required(token.get("LOWER")):
            options.append({v for v in _required(token["LOWER"]) if _can_occur(v)})
        return sorted(set.intersection(*options)) if options else None


def _rarest_run(forms: list[list[str]]) -> set[str]:
    """The strings of the window of tokens most specific to a run (longest shortest string), at most
    MAX_LITERALS of them unless a single token already has more. Empty: a token no text can hold."""
    if not all(forms):
        return set()
    best = set(min(forms, key=len))
    for i in range(len(forms)):
        strings = set(forms[i])
        for j in range(i + 1, len(forms) + 1):
            if len(strings) > MAX_LITERALS:
                break
            if _rarity(strings) > _rarity(best):
                best = strings
            if j < len(forms):
                strings = {a + sep + b for a in strings for sep in ("", " ") for b in forms[j]}
    return best


def _rarity(strings: set[str]) -> int:
    # No strings: a token no text can hold, so nothing can match; the best anchor of all (it never occurs).
    return min(map(len, strings)) if strings else 1 << 30


def _can_occur(form: str) -> bool:
    """Whether form can be part of a normalised text: lower-case word characters, apostrophes, single spaces."""
    return form == form.lower() and NORMAL_WORDS.fullmatch(form) is not None


def _lemma(word: str) -> str:
    lemmas = getAllLemmas(word)
    for pos in LEMMA_PREFERENCE:
        if pos in lemmas:
            return lemmas[pos][0]
    return word


def _required(value) -> list[str]:
    """The values a pattern token must take (a string or an IN list); none for NOT_IN, REGEX and the like."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict) and list(value) == ["IN"] and all(isinstance(v, str) for v in value["IN"]):
        return value["IN"]
    return []


def _values(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [v for vs in value.values() if isinstance(vs, list) for v in vs if isinstance(v, str)]
    return []


class Words:
    """Maps tokens of the normalised text back to the original words and punctuation."""

    def __init__(self, doc, norm: str, original: str):
        self.doc, self.norm, self.original_text = doc, norm, original
        self.count = len(original.split())  # the turn's words as said (a hit's `of`)
        # Plain ASCII turns (most ASR output) normalise by lower-casing alone: the same words at the same offsets.
        self.plain = original.isascii() and original.lower() == norm
        if not self.plain:
            marks = WORD_OR_MARK.finditer(original.replace("\u2019", "'"))
            self.items = [(m.group(), m.start(), m.end()) for m in marks]
            self.word_pos = [k for k, (w, _, _) in enumerate(self.items) if w not in ",.;:!?"]

    def _word_of(self, token_index: int) -> int:
        return self.norm.count(" ", 0, self.doc[token_index].idx)

    def before(self, token_index: int) -> int:
        """The number of the original text's words (split at whitespace) before this token's word."""
        if self.plain:  # single spaces, the same offsets
            return self._word_of(token_index)
        k = self._word_of(token_index)
        at = self.items[self.word_pos[k]][1] if k < len(self.word_pos) else len(self.original_text)
        return len(self.original_text[:at].split())

    def original(self, start: int, end: int) -> str:
        if self.plain:
            first = self.norm.rfind(" ", 0, self.doc[start].idx) + 1
            last = self.norm.find(" ", self.doc[end - 1].idx)
            return self.original_text[first:last if last >= 0 else len(self.norm)]
        first, last = self._word_of(start), self._word_of(end - 1)
        if last >= len(self.word_pos):
            return self.doc[start:end].text
        return self.original_text[self.items[self.word_pos[first]][1]:self.items[self.word_pos[last]][2]]

    def clause_break(self, token_index: int, start: int) -> bool:
        if self.plain:
            return False  # no punctuation
        a, b = self._word_of(token_index), self._word_of(start)
        if b >= len(self.word_pos) or a == b:
            return False
        return any(w in ",.;:!?" for w, _, _ in self.items[self.word_pos[a] + 1:self.word_pos[b]])
