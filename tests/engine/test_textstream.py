"""Stop strings held back until known, and characters split across tokens."""

from __future__ import annotations

from llmrelay.engine.textstream import Detokenizer, StopMatcher


def feed_all(matcher: StopMatcher, pieces: list[str]) -> tuple[str, bool]:
    out = []
    for piece in pieces:
        text, stopped = matcher.feed(piece)
        out.append(text)
        if stopped:
            return "".join(out), True
    out.append(matcher.flush())
    return "".join(out), False


def test_stop_split_across_pieces_is_never_sent() -> None:
    assert feed_all(StopMatcher(["END"]), ["hello E", "N", "D more"]) == ("hello ", True)


def test_held_text_is_released_when_it_is_not_a_stop() -> None:
    matcher = StopMatcher(["END"])
    assert matcher.feed("hello EN") == ("hello ", False)
    assert matcher.feed("joy") == ("ENjoy", False)


def test_earliest_of_several_stops_wins() -> None:
    assert feed_all(StopMatcher(["b", "abc"]), ["xa", "bc"]) == ("x", True)


def test_no_stops_passes_through() -> None:
    assert StopMatcher([]).feed("anything") == ("anything", False)


def test_multibyte_character_across_tokens() -> None:
    detok = Detokenizer()
    data = "诗".encode()
    assert detok.feed(data[:2]) == ""
    assert detok.feed(data[2:]) == "诗"
