"""Incremental decoding of `text/event-stream` bodies (Server-Sent Events)."""

from __future__ import annotations


class SSEDecoder:
    """Turn raw body bytes, split anywhere, into the `data` payload of each event.

    Follows the SSE rules that matter for chat streams: lines end with LF or CRLF,
    lines starting with ":" are comments (keep-alives), several `data:` lines of one
    event are joined with a newline, and a blank line ends the event. Other fields
    (`event:`, `id:`, `retry:`) are ignored.
    """

    def __init__(self) -> None:
        self._pending = b""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[str]:
        """Add bytes; return the data of every event they completed."""
        *lines, self._pending = (self._pending + chunk).split(b"\n")
        return [data for line in lines if (data := self._line(line)) is not None]

    def flush(self) -> list[str]:
        """End of body: return the data of an event left without its blank line."""
        events = self.feed(b"\n") if self._pending else []
        last = self._dispatch()
        return events if last is None else [*events, last]

    def _line(self, line: bytes) -> str | None:
        line = line.removesuffix(b"\r")
        if not line:
            return self._dispatch()
        field, _, value = line.partition(b":")
        if field == b"data":
            self._data.append(value.removeprefix(b" ").decode("utf-8", "replace"))
        return None

    def _dispatch(self) -> str | None:
        if not self._data:
            return None
        data = "\n".join(self._data)
        self._data.clear()
        return data
