"""Text for topic discovery: lemmas without a tagger pass, stop words, and trivial turns.

Lemmas come the way the tagger gets them (`pipeline/tag_lexicon.py`): spaCy's tokenizer alone (`spacy.blank("en")`,
with the same spoken contractions split) and lemminflect's lemma of each *distinct* word,
cached, so a million turns cost one tokenizer pass plus dictionary look-ups. The text is
normalised like the matcher sees it (lower case, no punctuation) after the redaction
placeholders ([CARD], [DOB], ...) are taken out: they say nothing about the topic.

A turn is *trivial* (backchannel, greeting, a read-out number, a redacted-only turn) when it
has fewer than `min_words` words or fewer than `min_content` content lemmas: words that are
neither stop words nor the small talk of a call ("okay thanks", "yes speaking", "no that's it").

Example:
    >>> lemmatise(["The app keeps crashing since the update"])
    ['the app keep crash since the update']
    >>> is_trivial("Okay, thanks.")
    True
"""
from __future__ import annotations

import functools
import re

import spacy
from spacy.attrs import NORM, ORTH
from spacy.lang.en.stop_words import STOP_WORDS as SPACY_STOP_WORDS

from pipeline.tag_lexicon import NUMBERS, ORDINALS, SPOKEN, _lemma, normalise

PLACEHOLDER = re.compile(r"\[[A-Z_]+\]")

# Words every contact-centre turn is full of: courtesy, fillers, the call itself, identity checks,
# and what a caller says to ask for anything ("I want/need/would like to ..."). As terms they only blur topics.
_SMALL_TALK = """
    hi hello hey bye goodbye morning afternoon evening good great fine perfect lovely wonderful
    please thank thanks cheer okay ok yes yeah yep yup no nope sure alright right oh ah uh um
    hmm mm erm like just really actually basically literally know mean guess think wonder
    want need would could like able try let tell ask say speak talk call ring
    help today sir madam ma'am mister mrs ms mr miss name speaking hold minute second moment
    bit lot thing stuff way time day week month year also still even already again anyway
    wait get got go come see look
    postcode zip digit birthday birth born bear
"""
CONTACT_CENTRE_STOP_WORDS = frozenset(_SMALL_TALK.split())

# Read-out numbers are never what a call is about (and what is left of them after redaction).
NUMBER_WORDS = frozenset(NUMBERS) | frozenset(ORDINALS) | frozenset(
    "oh thirty forty fifty sixty seventy eighty ninety hundred thousand million double triple "  # noqa: SIM905
    "january february march april may june july august september october november december".split())

# spaCy lists "'ll", "'ve", ...; our normalised text splits them off without the apostrophe.
CONTRACTIONS = frozenset({"not", "n't", "'s", "s", "ll", "ve", "re", "d", "m", "t"})
STOP_WORDS = frozenset(SPACY_STOP_WORDS) | CONTACT_CENTRE_STOP_WORDS | NUMBER_WORDS | CONTRACTIONS


class Lemmatiser:
    """Tokenizer-only lemmas, cached per distinct word (see the module docstring).

    Normalised text is single-spaced words, and spaCy's tokenizer splits on spaces before anything else
    and handles each word on its own (no tokenizer exception of English spans a space). So each distinct
    word is tokenized once, and a turn costs a split and dictionary look-ups rather than a Doc.
    """

    def __init__(self):
        self.nlp = spacy.blank("en")
        for text, (a, a_norm, b, b_norm) in SPOKEN.items():
            self.nlp.tokenizer.add_special_case(text, [{ORTH: a, NORM: a_norm}, {ORTH: b, NORM: b_norm}])
        self._lemmas: dict[str, str] = {}  # token norm -> lemma
        self._words: dict[str, str] = {}   # word -> its tokens' lemmas, space-separated

    def __call__(self, texts: list[str]) -> list[str]:
        words, word = self._words, self._word
        return [" ".join([words.get(w) or word(w) for w in normalise(PLACEHOLDER.sub(" ", t or "")).split()])
                for t in texts]

    def _word(self, word: str) -> str:
        lemmas = []
        for token in self.nlp.tokenizer(word):
            norm = token.norm_  # tokenizer exceptions already give "not" for "n't", "going" for "gon"
            lemma = self._lemmas.get(norm)
            if lemma is None:
                lemma = self._lemmas[norm] = _lemma(norm)
            lemmas.append(lemma)
        self._words[word] = " ".join(lemmas)
        return self._words[word]


@functools.lru_cache(maxsize=1)
def _lemmatiser() -> Lemmatiser:
    return Lemmatiser()


def lemmatise(texts: list[str]) -> list[str]:
    """Each text as space-separated lower-case lemmas (placeholders and punctuation removed)."""
    return _lemmatiser()(list(texts))


def content_words(lemmas: str) -> list[str]:
    """The lemmas that can carry a topic: not stop words, not small talk, not numbers."""
    return [w for w in lemmas.split() if w not in STOP_WORDS and not w.isdigit() and len(w) > 1]


def is_trivial(text: str, lemmas: str | None = None, min_words: int = 3, min_content: int = 2) -> bool:
    """Backchannel, greeting, redacted-only or very short turn: nothing a topic could be about."""
    lemmas = lemmatise([text])[0] if lemmas is None else lemmas
    return len(lemmas.split()) < min_words or len(content_words(lemmas)) < min_content
