"""Play sources: PLACEHOLDER of the interface branch ``media-sources`` implements (it replaces
this file when merged). Checks the shape of ``playSources`` and prepares no file: every source
fails with ACS's unknown-error result, so a play answers ``PlayFailed`` rather than silence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.core.errors import InvalidField

MAX_PLAY_SOURCES = 10
_DETAIL = {"file": ("file", "uri"), "text": ("text", "text"), "ssml": ("ssml", "ssmlText")}


@dataclass(frozen=True, slots=True)
class PlaySource:
    body: dict[str, Any]


class PlaySourceFailed(Exception):
    def __init__(self, code: int, subcode: int, message: str) -> None:
        super().__init__(f"{code}/{subcode}: {message}")
        self.code, self.subcode, self.message = code, subcode, message


def parse_play_sources(body_sources: Any) -> list[PlaySource]:
    if not isinstance(body_sources, list) or not body_sources:
        raise InvalidField("playSources must be a non-empty array of play sources", "playSources")
    if len(body_sources) > MAX_PLAY_SOURCES:
        raise InvalidField(f"playSources has more than {MAX_PLAY_SOURCES} sources", "playSources")
    parsed = []
    for index, item in enumerate(body_sources):
        kind = item.get("kind") if isinstance(item, dict) else None
        if kind not in _DETAIL:
            raise InvalidField("kind must be file, text or ssml", f"playSources[{index}].kind")
        name, required = _DETAIL[kind]
        detail = item.get(name)
        if not isinstance(detail, dict) or not isinstance(detail.get(required), str) or not detail[required]:
            raise InvalidField(f"{name}.{required} is required", f"playSources[{index}].{name}.{required}")
        parsed.append(PlaySource(item))
    return parsed


def play_source_body(source: PlaySource) -> dict[str, Any]:
    return source.body


class PlaySourcePreparer:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def prepare(self, source: PlaySource) -> Path:
        raise PlaySourceFailed(500, 9999, "Unknown internal server error. No play source preparer.")
