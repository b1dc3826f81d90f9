from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sms.keywords import (
    DEFAULT_HELP_KEYWORDS,
    DEFAULT_OPT_IN_KEYWORDS,
    DEFAULT_OPT_OUT_KEYWORDS,
    KeywordAction,
    KeywordSets,
    classify_keyword,
    normalise_keyword_body,
)


@pytest.mark.parametrize(
    ("body", "action"),
    [
        ("STOP", KeywordAction.OPT_OUT),
        ("stop", KeywordAction.OPT_OUT),
        ("  Stop!  ", KeywordAction.OPT_OUT),
        ("STOP.", KeywordAction.OPT_OUT),
        ("stop all", KeywordAction.OPT_OUT),
        ("StopAll", KeywordAction.OPT_OUT),
        ("Unsubscribe", KeywordAction.OPT_OUT),
        ("cancel", KeywordAction.OPT_OUT),
        ("END", KeywordAction.OPT_OUT),
        ("quit!!!", KeywordAction.OPT_OUT),
        ("\uff33\uff34\uff2f\uff30", KeywordAction.OPT_OUT),  # full-width STOP
        ('"stop"', KeywordAction.OPT_OUT),
        ("stop 🛑", KeywordAction.OPT_OUT),
        ("START", KeywordAction.OPT_IN),
        ("unstop", KeywordAction.OPT_IN),
        ("Yes", KeywordAction.OPT_IN),
        ("HELP", KeywordAction.HELP),
        ("info?", KeywordAction.HELP),
        ("please stop texting me", KeywordAction.NONE),
        ("stopping by later", KeywordAction.NONE),
        ("", KeywordAction.NONE),
        ("   ", KeywordAction.NONE),
        ("!!!", KeywordAction.NONE),
        ("Hello", KeywordAction.NONE),
    ],
)
def test_default_keywords(body: str, action: KeywordAction) -> None:
    assert classify_keyword(body) == action


def test_normalisation() -> None:
    assert normalise_keyword_body("  Hello,\tWORLD!!  ") == "hello world"
    assert normalise_keyword_body("Straße") == "strasse"


def test_configured_keywords_replace_the_defaults() -> None:
    keywords = KeywordSets.create(opt_out=["arrêt", "STOP ALL"], opt_in=["go"], help=["aide"])
    assert classify_keyword("Arrêt", keywords) == KeywordAction.OPT_OUT
    assert classify_keyword("stopall", keywords) == KeywordAction.OPT_OUT
    assert classify_keyword("stop", keywords) == KeywordAction.NONE
    assert classify_keyword("GO", keywords) == KeywordAction.OPT_IN
    assert classify_keyword("aide", keywords) == KeywordAction.HELP


def test_a_keyword_in_two_sets_is_refused() -> None:
    with pytest.raises(ValueError, match="stop"):
        KeywordSets.create(opt_out=["STOP"], opt_in=["Stop!"])


def test_blank_keywords_are_dropped() -> None:
    keywords = KeywordSets.create(opt_out=["", "!!", "STOP"])
    assert keywords.opt_out == frozenset({"stop"})


keyword_bodies = st.sampled_from(DEFAULT_OPT_OUT_KEYWORDS + DEFAULT_OPT_IN_KEYWORDS + DEFAULT_HELP_KEYWORDS)
decoration = st.text(alphabet=st.sampled_from(" .,!?-\t\"'"), max_size=4)


@given(keyword_bodies, decoration, decoration, st.sampled_from([str.upper, str.lower, str.title]))
def test_decorated_keywords_keep_their_class(
    keyword: str, before: str, after: str, case: Callable[[str], str]
) -> None:
    expected = classify_keyword(keyword)
    assert expected != KeywordAction.NONE
    assert classify_keyword(before + case(keyword) + after) == expected


@given(st.text(max_size=200))
def test_classification_never_raises(body: str) -> None:
    assert classify_keyword(body) in set(KeywordAction)
