"""The fast sentiment path returns exactly VADER's scores: on generated calls, on the demo scripts and on
random turns built from lexicon words, boosters, negations, "kind of", "but", punctuation, capitals
and emoji."""
import json
import random
import sys

import pytest

from conftest import ROOT
from models import sentiment as S

sys.path.insert(0, str(ROOT / "bench"))


def fresh(texts):
    S._score.cache_clear()
    return S.sentiment(texts)


@pytest.mark.parametrize("text, expected", [
    # VADER's README examples (compound, rounded to 3 places)
    ("VADER is smart, handsome, and funny.", 0.832),
    ("VADER is not smart, handsome, nor funny.", -0.742),
    ("The book was kind of good.", 0.383),
    ("Today SUX!", -0.546),
    ("I don't know.", 0.0),
    ("the card is [CARD]", 0.0),
    ("", 0.0),
])
def test_known_scores(text, expected):
    assert fresh([text]) == [expected]


def test_generated_calls_and_demo_scripts_score_as_vader_does():
    from text_pipeline import generate

    texts = [u["text"] for _, us in generate(20_000, seed=8) for u in us]
    texts += [u["text"] for p in sorted((ROOT / "data/demo_transcripts").glob("*.json"))
              for u in json.loads(p.read_text())["utterances"]]
    assert fresh(texts) == [S.vader(t) for t in texts]
    assert 0 < sum(s == 0.0 for s in S.sentiment(texts)) < len(texts)  # both paths were taken


def test_random_turns_score_as_vader_does():
    rng = random.Random(4)
    lexicon = sorted(S._analyser().lexicon)
    plain = "my the card bill account phone internet order refund today call it was is a".split()
    modifiers = "not no never very extremely kind of but barely n't isn't nor or least".split()
    extras = ["!", "!!", "?", ",", ".", ":)", ":(", "😀", "💔", "[CARD]", "LOL", "GREAT", "—", "café"]
    texts = []
    for _ in range(5_000):
        words = [rng.choice(rng.choice([lexicon, plain, plain, modifiers, extras])) for _ in range(rng.randint(1, 14))]
        if rng.random() < 0.3:
            words = [w.upper() if rng.random() < 0.2 else w.capitalize() for w in words]
        joined = " ".join(words)
        texts.append(joined if rng.random() < 0.7 else joined.replace(" ", rng.choice(["", ",", "  "]), 2))
    assert fresh(texts) == [S.vader(t) for t in texts]
