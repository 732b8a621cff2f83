from __future__ import annotations

from llm.sse import SSEDecoder


def test_events_split_at_any_byte_are_put_back_together() -> None:
    body = 'data: {"a": "héllo"}\n\ndata: [DONE]\n\n'.encode()
    decoder = SSEDecoder()

    events = [event for i in range(len(body)) for event in decoder.feed(body[i : i + 1])]

    assert events == ['{"a": "héllo"}', "[DONE]"]


def test_comments_and_other_fields_are_ignored_and_crlf_is_accepted() -> None:
    decoder = SSEDecoder()

    events = decoder.feed(b": keep-alive\r\n\r\nevent: message\r\nid: 3\r\ndata: x\r\n\r\n")

    assert events == ["x"]


def test_several_data_lines_of_one_event_are_joined_with_newlines() -> None:
    assert SSEDecoder().feed(b"data: line one\ndata:line two\n\n") == ["line one\nline two"]


def test_flush_returns_an_event_that_lacked_its_blank_line() -> None:
    decoder = SSEDecoder()

    assert decoder.feed(b"data: last") == []
    assert decoder.flush() == ["last"]


def reference_events(body: bytes) -> list[str]:
    """The SSE rules, line by line, on the whole body at once (what any split must give)."""
    events: list[str] = []
    data: list[str] = []
    for raw in body.decode("utf-8", "replace").split("\n"):
        line = raw.removesuffix("\r")
        if not line:
            if data:
                events.append("\n".join(data))
                data = []
            continue
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value.removeprefix(" "))
    if data:
        events.append("\n".join(data))
    return events


BODY = (
    ": keep-alive\r\n\r\n"
    'data: {"choices":[{"index":0,"delta":{"content":"日本 ü €"}}]}\n\n'
    "event: message\r\nid: 7\r\ndata:no space\r\ndata\r\ndata:  two spaces\r\n\r\n"
    "data: \n\n"
    'data: {"usage":{"prompt_tokens":3,"completion_tokens":1}}\n\n'
    "data: [DONE]\n\n"
    "data: after the end"
).encode()


def test_every_two_way_split_gives_the_same_events_as_the_whole_body() -> None:
    expected = reference_events(BODY)
    assert expected[1] == "no space\n\n two spaces"  # the cases are really in the body
    assert expected[-2:] == ["[DONE]", "after the end"]

    for cut in range(len(BODY) + 1):
        decoder = SSEDecoder()
        events = decoder.feed(BODY[:cut]) + decoder.feed(BODY[cut:]) + decoder.flush()
        assert events == expected, cut


def test_a_multi_byte_character_split_across_reads_is_not_replaced() -> None:
    body = 'data: {"t": "€"}\n\n'.encode()
    cut = body.index("€".encode()) + 1  # inside the three bytes of the euro sign
    decoder = SSEDecoder()

    assert decoder.feed(body[:cut]) == []
    assert decoder.feed(body[cut:]) == ['{"t": "€"}']


def test_an_empty_data_line_is_an_event_but_a_lone_blank_line_is_not() -> None:
    assert SSEDecoder().feed(b"\n\ndata:\n\n\r\n") == [""]
