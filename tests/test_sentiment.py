"""Sentiment is VADER's with a contact centre's lexicon: the faster path for ASCII text must give VADER's own
scores of that lexicon, word for word; and the lexicon must hear a call going wrong as a QA listener does."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from models.sentiment import _Vader, on_calls, sentiment, vader

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
on_calls(REFERENCE.lexicon)


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
        "thank you so much that's really helpful")["compound"], 3) > 0.4
    turns = ["this is ridiculous I'm not happy at all", "okay", "my card is [CARD]"]
    assert sentiment(turns) == [round(REFERENCE.polarity_scores(t.replace("[CARD]", " "))["compound"], 3)
                                for t in turns]
    assert sentiment(["this is ridiculous I'm not happy at all"])[0] < -0.5


# How a QA listener hears a caller: said on calls, not in the demo script the lexicon's fixes were found on
UNHAPPY = ["I want to speak to your manager", "this is a joke, I've been on hold for an hour",
           "I'm cancelling my account", "whatever, just close it", "the app keeps crashing",
           "I've been overcharged again", "my phone keeps freezing", "nobody ever calls me back", "I'd like to make a complaint"]
MECHANICS = ["yes please", "okay thank you", "no that's all", "sure, go ahead", "Fine. Bye.",
             "I'd like to pay my bill please", "yeah, it's the one ending in 42", "can you help me with my number"]
PLEASED = ["that's brilliant, thank you so much", "great, that's sorted then", "you've been really helpful",
           "perfect, I appreciate it"]


def test_a_call_going_wrong_is_negative_and_its_courtesies_carry_no_feeling():
    """VADER's published lexicon scores "I want to speak to your manager" +0.08 and "okay thank you" +0.53: a
    customer demanding a supervisor "please" and signing off "Fine. Thank you." read as pleased."""
    assert [s < -0.15 for s in sentiment(UNHAPPY)] == [True] * len(UNHAPPY)
    assert sentiment(MECHANICS) == [0.0] * len(MECHANICS)
    assert [s > 0.4 for s in sentiment(PLEASED)] == [True] * len(PLEASED)
    published = SentimentIntensityAnalyzer()
    said = ("I want to speak to your manager", "okay thank you")
    assert [published.polarity_scores(t)["compound"] for t in said] == [0.0772, 0.5267]
