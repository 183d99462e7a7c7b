"""Sentiment per utterance: VADER (lexicon + rules), offline and fast on short spoken turns.

VADER's compound score is in [-1, 1]. Transcripts have no punctuation or capitals
to lean on, which costs VADER its emphasis rules but not its lexicon or negation
handling, so scores stay usable on ASR text.
"""
from __future__ import annotations

import functools
import re

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

# Redaction placeholders are not words; VADER would read "[CARD]" as neutral text anyway, but a
# placeholder-only turn should score exactly 0.
_PLACEHOLDER = re.compile(r"\[[A-Z]+\]")


@functools.lru_cache(maxsize=1)
def _analyser() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


def sentiment(texts: list[str]) -> list[float]:
    """Compound VADER score of each text, rounded to 3 places (stable across platforms)."""
    analyser = _analyser()
    return [round(analyser.polarity_scores(_PLACEHOLDER.sub(" ", t or ""))["compound"], 3) for t in texts]
