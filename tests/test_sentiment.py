"""Sentiment is VADER's: the faster path for ASCII text must give VADER's own scores, word for word."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from models.sentiment import _Vader, sentiment, vader

# lexicon words, boosters, negations, "but", "least", "kind of", idioms, ASCII emoticons, caps, an emoji
WORDS = ["good", "GOOD", "bad", "great", "terrible", "not", "no", "never", "isn't", "but", "least", "at", "very",
         "extremely", "kind", "of", "sort", "the", "bill", "cancel", "happy", "angry", "sucks", "the", "bomb", "yeah",
         "right", "hell", "cut", "me", "some", "slack", "thank", "you", "love", "hate", "frustrated", ":)", ":(",
         ":-D", "<3", "ok", "okay", "sorry", "problem", "without", "doubt", "nor", "or", "\U0001F600", "wow", "LOL"]


@settings(max_examples=1500, deadline=None, database=None)
@given(st.lists(st.one_of(st.sampled_from(WORDS), st.text(min_size=1, max_size=6)), max_size=30),
       st.lists(st.sampled_from([" ", " ", ", ", ". ", "! ", "!!! ", "? ", "  ", "\n"]), min_size=30, max_size=30))
def test_the_fast_path_gives_vaders_own_scores(words, seps):
    text = "".join(w + s for w, s in zip(words, seps))
    assert _Vader().polarity_scores(text) == REFERENCE.polarity_scores(text)


REFERENCE = SentimentIntensityAnalyzer()


@pytest.mark.parametrize("text", [
    "it was kind of great", "kind people here", "that is not good", "no good at all", "it is the least bad option",
    "at least it is good", "the agent was good but the wait was terrible", "this is GOOD service", "extremely helpful",
    "very very bad", "I am happy :)", "no problem", "without a doubt the best", "you're the bomb", "cut me some slack",
    "  great!!!  ", "is this right?", "I \U0001F600 love it", ""])
def test_each_of_vaders_rules_scores_as_vader_scores_it(text):
    assert _Vader().polarity_scores(text) == REFERENCE.polarity_scores(text)


def test_scores_of_spoken_turns():
    """Examples whose sign a caller would agree with; VADER's own values (the lexicon's, as published)."""
    assert vader("thank you so much that's really helpful") == round(REFERENCE.polarity_scores(
        "thank you so much that's really helpful")["compound"], 3) > 0.5
    turns = ["this is ridiculous I'm not happy at all", "okay", "my card is [CARD]"]
    assert sentiment(turns) == [round(REFERENCE.polarity_scores(t.replace("[CARD]", " "))["compound"], 3)
                                for t in turns]
    assert sentiment(["this is ridiculous I'm not happy at all"])[0] < -0.5
