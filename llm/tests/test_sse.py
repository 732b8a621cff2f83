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
