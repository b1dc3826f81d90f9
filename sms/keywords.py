"""Opt-out / opt-in / help keyword classification of inbound (MO) message bodies.

A keyword counts only when it is the whole message (after normalisation), as the US carrier
guidelines (CTIA) practise: "stop" and "Stop!" opt out, "don't stop sending me these" does not.
Normalisation: Unicode NFKC (full-width letters become ASCII), case-folding, punctuation and
symbols dropped, whitespace trimmed and collapsed. A keyword written with a space inside
("STOP ALL") matches its unspaced form (STOPALL) and the reverse: keywords are compared
with their spaces removed.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class KeywordAction(StrEnum):
    OPT_OUT = "opt-out"
    OPT_IN = "opt-in"
    HELP = "help"
    NONE = "none"


DEFAULT_OPT_OUT_KEYWORDS: tuple[str, ...] = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT")
DEFAULT_OPT_IN_KEYWORDS: tuple[str, ...] = ("START", "UNSTOP", "YES")
DEFAULT_HELP_KEYWORDS: tuple[str, ...] = ("HELP", "INFO")


def normalise_keyword_body(body: str) -> str:
    """NFKC, case-fold, drop punctuation and symbols, trim and collapse whitespace."""
    folded = unicodedata.normalize("NFKC", body).casefold()
    kept = (
        " " if char.isspace() else char
        for char in folded
        if char.isspace() or unicodedata.category(char)[0] not in ("P", "S", "C")
    )
    return " ".join("".join(kept).split())


def _compact(text: str) -> str:
    return normalise_keyword_body(text).replace(" ", "")


@dataclass(frozen=True, slots=True)
class KeywordSets:
    """The configured keywords, normalised without spaces. A keyword may belong to one set only."""

    opt_out: frozenset[str]
    opt_in: frozenset[str]
    help: frozenset[str]

    @classmethod
    def create(
        cls,
        opt_out: Iterable[str] = DEFAULT_OPT_OUT_KEYWORDS,
        opt_in: Iterable[str] = DEFAULT_OPT_IN_KEYWORDS,
        help: Iterable[str] = DEFAULT_HELP_KEYWORDS,
    ) -> KeywordSets:
        sets = {
            name: frozenset(compact for word in words if (compact := _compact(word)))
            for name, words in (("opt_out", opt_out), ("opt_in", opt_in), ("help", help))
        }
        names = list(sets)
        for index, first in enumerate(names):
            for second in names[index + 1 :]:
                overlap = sets[first] & sets[second]
                if overlap:
                    raise ValueError(f"keywords {sorted(overlap)} are both {first} and {second}")
        return cls(sets["opt_out"], sets["opt_in"], sets["help"])


DEFAULT_KEYWORDS = KeywordSets.create()


def classify_keyword(body: str, keywords: KeywordSets = DEFAULT_KEYWORDS) -> KeywordAction:
    """What the MO body asks for: OPT_OUT, OPT_IN, HELP, or NONE for an ordinary message."""
    compact = _compact(body)
    if not compact:
        return KeywordAction.NONE
    if compact in keywords.opt_out:
        return KeywordAction.OPT_OUT
    if compact in keywords.opt_in:
        return KeywordAction.OPT_IN
    if compact in keywords.help:
        return KeywordAction.HELP
    return KeywordAction.NONE
