"""Sentiment per utterance: VADER (lexicon + rules), offline and fast on short spoken turns.

VADER's compound score is in [-1, 1]. Transcripts have no punctuation or capitals
to lean on, which costs VADER its emphasis rules but not its lexicon or negation
handling, so scores stay usable on ASR text.

VADER's lexicon was built from social media, where "yes", "please", "okay", "thanks" and "like" carry
feeling. On a service call they are its mechanics: a caller demanding a supervisor says "please", and an
angry one ends with "Fine. Thank you." Scored as published, the demo's escalated call ended at +0.45
and its lost customer at 0.0. SERVICE_LEXICON takes those words out and gives the words of a call going
wrong ("supervisor", "cancelling", "crashing", "whatever", "nobody") the valence a QA listener hears.

Speed, with VADER's scores unchanged: VADER gives a word a valence only when the word (lower-cased,
as split on whitespace, punctuation stripped or not) is in its lexicon; boosters, negations, "but"
and punctuation only scale valences already there. So a turn with no lexicon word scores exactly
0.0 without running VADER (most turns), emoji (described in words by VADER) always run it, and
texts said again ("okay thank you") are looked up. On ASCII text, `_Vader` runs VADER's own steps
without its character-by-character emoji pass (which leaves such text as it is), without a
call per word that is not in the lexicon (which VADER scores 0), and with the words lower-cased
once per text (VADER does it again in each of its checks, the whole text each time); a test checks
its scores against VADER's own.
"""
from __future__ import annotations

import functools
import re
import string

from vaderSentiment.vaderSentiment import (BOOSTER_DICT, C_INCR, N_SCALAR, NEGATE, SPECIAL_CASES,
                                           SentimentIntensityAnalyzer, normalize, scalar_inc_dec)

# Redaction placeholders are not words; VADER would read "[CARD]" as neutral text anyway, but a
# placeholder-only turn should score exactly 0.
_PLACEHOLDER = re.compile(r"\[[A-Z]+\]")
_NEGATE = frozenset(NEGATE)

# Politeness and the back-and-forth of a call: no feeling either way (a word VADER does not know scores 0)
NEUTRAL_ON_CALLS = frozenset("yes yeah yep sure please okay ok fine alright like want no thank thanks help well "
                             "giving pay number".split())
# Words of a call going wrong, on VADER's scale (-4..4; "cancel" is -1.0, "terrible" -2.1)
SERVICE_LEXICON = {"supervisor": -1.5, "manager": -1.0, "escalate": -1.2, "cancelling": -1.0, "canceling": -1.0,
                   "cancellation": -1.0, "switching": -0.8, "crashing": -1.5, "crashes": -1.5, "crashed": -1.5,
                   "freezes": -1.2, "freezing": -1.2, "frozen": -1.2, "disconnected": -1.2, "overcharged": -2.0,
                   "nobody": -1.0, "whatever": -0.8, "rubbish": -2.0, "joke": -1.5, "sorted": 1.5}


def on_calls(lexicon: dict) -> dict:
    """VADER's lexicon as a contact centre reads it (see the module docstring); changed in place, and returned."""
    for word in NEUTRAL_ON_CALLS:
        lexicon.pop(word, None)
    lexicon.update(SERVICE_LEXICON)
    return lexicon
_SO_THIS = ("so", "this")


class _Vader(SentimentIntensityAnalyzer):
    """VADER (vaderSentiment 3.3.2, MIT) with the lexicon of a call (on_calls), and VADER's scores of that lexicon
    in less time on ASCII text."""

    def __init__(self):
        super().__init__()
        on_calls(self.lexicon)
        # the emoji pass only ever replaces characters it has a description of: none of them is ASCII
        self._ascii_untouched = not any(len(e) == 1 and e.isascii() for e in self.emojis)

    def polarity_scores(self, text):
        if not (self._ascii_untouched and text.isascii()):
            return super().polarity_scores(text)
        return self.score_valence(*self._sentiments(text))

    def compound(self, text) -> float:
        """polarity_scores(text)["compound"], without the pos/neg/neu shares score_valence also works out and
        rounds (a third of its time on ASCII text): the same sum, punctuation emphasis, normalisation, rounding."""
        if not (self._ascii_untouched and text.isascii()):
            return super().polarity_scores(text)["compound"]
        sentiments, text = self._sentiments(text)
        if not sentiments:
            return 0.0
        sum_s = float(sum(sentiments))
        if sum_s > 0:
            sum_s += self._punctuation_emphasis(text)
        elif sum_s < 0:
            sum_s -= self._punctuation_emphasis(text)
        return round(normalize(sum_s), 4)

    def _sentiments(self, text: str) -> tuple[list[float], str]:
        """VADER's per-word valences of an ASCII text, and the text as score_valence reads it."""
        text = text.strip()
        # SentiText's words (punctuation stripped unless that leaves an emoticon's two characters) and caps test
        words = [w if len(bare := w.strip(string.punctuation)) <= 2 else bare for w in text.split()]
        is_cap_diff = 0 < len(words) - sum(w.isupper() for w in words) < len(words)
        sentiments, lexicon, last = [], self.lexicon, len(words) - 1
        lowered = [w.lower() for w in words]
        for i, lower in enumerate(lowered):
            # VADER's own loop: boosters and "kind of" score 0, and so (in sentiment_valence) does any non-lexicon word
            if lower not in lexicon or lower in BOOSTER_DICT or (
                    lower == "kind" and i < last and lowered[i + 1] == "of"):
                sentiments.append(0)
            else:
                sentiments.append(self._valence(words, lowered, i, is_cap_diff))
        if "but" in lowered:  # _but_check changes nothing else
            sentiments = self._but_check(words, sentiments)
        return sentiments, text

    def _valence(self, words: list[str], lowered: list[str], i: int, is_cap_diff: bool) -> float:
        """VADER's sentiment_valence of lexicon word i, step for step, reading the words lower-cased once per text
        (VADER lower-cases the whole text again in each of its checks, up to seven times per lexicon word)."""
        lexicon = self.lexicon
        valence = lexicon[lowered[i]]
        if lowered[i] == "no" and i != len(words) - 1 and lowered[i + 1] in lexicon:
            valence = 0.0  # "no" negates the next lexicon word instead
        if (i > 0 and lowered[i - 1] == "no") or (i > 1 and lowered[i - 2] == "no") or (
                i > 2 and lowered[i - 3] == "no" and lowered[i - 1] in ["or", "nor"]):
            valence = lexicon[lowered[i]] * N_SCALAR
        if words[i].isupper() and is_cap_diff:
            valence = valence + C_INCR if valence > 0 else valence - C_INCR
        for start_i in range(0, 3):
            if i > start_i and lowered[i - (start_i + 1)] not in lexicon:
                s = scalar_inc_dec(words[i - (start_i + 1)], valence, is_cap_diff)
                if start_i == 1 and s != 0:
                    s = s * 0.95
                if start_i == 2 and s != 0:
                    s = s * 0.9
                valence = valence + s
                valence = _negation_check(valence, lowered, start_i, i)
                if start_i == 2:
                    valence = _special_idioms_check(valence, lowered, i)
        return _least_check(valence, lowered, i, lexicon)


def _negated(lower: str) -> bool:
    """VADER's negated([word]) for one lower-cased word."""
    return lower in _NEGATE or "n't" in lower


def _negation_check(valence: float, lowered: list[str], start_i: int, i: int) -> float:
    """VADER's _negation_check on the lower-cased words."""
    if start_i == 0:
        if _negated(lowered[i - 1]):
            valence = valence * N_SCALAR
    elif start_i == 1:
        if lowered[i - 2] == "never" and lowered[i - 1] in _SO_THIS:
            valence = valence * 1.25
        elif lowered[i - 2] == "without" and lowered[i - 1] == "doubt":
            pass
        elif _negated(lowered[i - 2]):
            valence = valence * N_SCALAR
    else:
        if (lowered[i - 3] == "never" and lowered[i - 2] in _SO_THIS) or lowered[i - 1] in _SO_THIS:
            valence = valence * 1.25
        elif lowered[i - 3] == "without" and (lowered[i - 2] == "doubt" or lowered[i - 1] == "doubt"):
            pass
        elif _negated(lowered[i - 3]):
            valence = valence * N_SCALAR
    return valence


def _special_idioms_check(valence: float, lowered: list[str], i: int) -> float:
    """VADER's _special_idioms_check on the lower-cased words (i > 2)."""
    onezero = f"{lowered[i - 1]} {lowered[i]}"
    twoonezero = f"{lowered[i - 2]} {lowered[i - 1]} {lowered[i]}"
    twoone = f"{lowered[i - 2]} {lowered[i - 1]}"
    threetwoone = f"{lowered[i - 3]} {lowered[i - 2]} {lowered[i - 1]}"
    threetwo = f"{lowered[i - 3]} {lowered[i - 2]}"
    for seq in (onezero, twoonezero, twoone, threetwoone, threetwo):
        if seq in SPECIAL_CASES:
            valence = SPECIAL_CASES[seq]
            break
    if len(lowered) - 1 > i and (zeroone := f"{lowered[i]} {lowered[i + 1]}") in SPECIAL_CASES:
        valence = SPECIAL_CASES[zeroone]
    if len(lowered) - 1 > i + 1 and (zeroonetwo := f"{lowered[i]} {lowered[i + 1]} {lowered[i + 2]}") in SPECIAL_CASES:
        valence = SPECIAL_CASES[zeroonetwo]
    for n_gram in (threetwoone, threetwo, twoone):
        if n_gram in BOOSTER_DICT:
            valence = valence + BOOSTER_DICT[n_gram]
    return valence


def _least_check(valence: float, lowered: list[str], i: int, lexicon: dict) -> float:
    """VADER's _least_check on the lower-cased words."""
    if i > 1 and lowered[i - 1] not in lexicon and lowered[i - 1] == "least":
        if lowered[i - 2] != "at" and lowered[i - 2] != "very":
            valence = valence * N_SCALAR
    elif i > 0 and lowered[i - 1] not in lexicon and lowered[i - 1] == "least":
        valence = valence * N_SCALAR
    return valence


@functools.lru_cache(maxsize=1)
def _analyser() -> _Vader:
    return _Vader()


def vader(text: str) -> float:
    """VADER itself: the compound score of a text, placeholders removed, rounded to 3 places."""
    return _compound(_PLACEHOLDER.sub(" ", text or ""))


def _compound(clean: str) -> float:
    return round(_analyser().compound(clean), 3)


def _may_carry_valence(text: str, lexicon: dict) -> bool:
    if not text.isascii():
        return True
    return any(word in lexicon or word.strip(string.punctuation) in lexicon for word in text.lower().split())


@functools.lru_cache(maxsize=200_000)
def _score(text: str) -> float:
    clean = _PLACEHOLDER.sub(" ", text)
    if not _may_carry_valence(clean, _analyser().lexicon):
        return 0.0
    return _compound(clean)


def sentiment(texts: list[str]) -> list[float]:
    """Compound VADER score of each text, rounded to 3 places (stable across platforms)."""
    return [_score(t or "") for t in texts]
