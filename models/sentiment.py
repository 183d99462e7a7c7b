"""Sentiment per utterance: VADER (lexicon + rules), offline and fast on short spoken turns.

VADER's compound score is in [-1, 1]. Transcripts have no punctuation or capitals
to lean on, which costs VADER its emphasis rules but not its lexicon or negation
handling, so scores stay usable on ASR text.

Speed, with VADER's scores unchanged: VADER gives a word a valence only when the word (lower-cased,
as split on whitespace, punctuation stripped or not) is in its lexicon; boosters, negations, "but"
and punctuation only scale valences already there. So a turn with no lexicon word scores exactly
0.0 without running VADER (most turns), emoji (described in words by VADER) always run it, and
texts said again ("okay thank you") are looked up. On ASCII text, `_Vader` runs VADER's own steps
without its character-by-character emoji pass (which leaves such text as it is) and without a
call per word that is not in the lexicon (which VADER scores 0); a test checks its scores
against VADER's own.
"""
from __future__ import annotations

import functools
import re
import string

from vaderSentiment.vaderSentiment import BOOSTER_DICT, SentiText, SentimentIntensityAnalyzer

# Redaction placeholders are not words; VADER would read "[CARD]" as neutral text anyway, but a
# placeholder-only turn should score exactly 0.
_PLACEHOLDER = re.compile(r"\[[A-Z]+\]")


class _Vader(SentimentIntensityAnalyzer):
    """VADER (vaderSentiment 3.3.2, MIT), with the same scores in less time on ASCII text."""

    def __init__(self):
        super().__init__()
        # the emoji pass only ever replaces characters it has a description of: none of them is ASCII
        self._ascii_untouched = not any(len(e) == 1 and e.isascii() for e in self.emojis)

    def polarity_scores(self, text):
        if not (self._ascii_untouched and text.isascii()):
            return super().polarity_scores(text)
        text = text.strip()
        sentitext = SentiText(text)
        words = sentitext.words_and_emoticons
        sentiments, lexicon, last = [], self.lexicon, len(words) - 1
        for i, item in enumerate(words):
            lower = item.lower()
            # VADER's own loop: boosters and "kind of" score 0, and so (in sentiment_valence) does any non-lexicon word
            if lower not in lexicon or lower in BOOSTER_DICT or (
                    lower == "kind" and i < last and words[i + 1].lower() == "of"):
                sentiments.append(0)
            else:
                sentiments = self.sentiment_valence(0, sentitext, item, i, sentiments)
        sentiments = self._but_check(words, sentiments)
        return self.score_valence(sentiments, text)


@functools.lru_cache(maxsize=1)
def _analyser() -> SentimentIntensityAnalyzer:
    return _Vader()


def vader(text: str) -> float:
    """VADER itself: the compound score of a text, placeholders removed, rounded to 3 places."""
    return _compound(_PLACEHOLDER.sub(" ", text or ""))


def _compound(clean: str) -> float:
    return round(_analyser().polarity_scores(clean)["compound"], 3)


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
