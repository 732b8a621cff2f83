"""Incremental decoding of `text/event-stream` bodies (Server-Sent Events)."""

from __future__ import annotations


class SSEDecoder:
    """Turn raw body bytes, split anywhere, into the `data` payload of each event.

    Follows the SSE rules that matter for chat streams: lines end with LF or CRLF,
    lines starting with ":" are comments (keep-alives), several `data:` lines of one
    event are joined with a newline, and a blank line ends the event. Other fields
    (`event:`, `id:`, `retry:`) are ignored. Lines are decoded whole, so a multi-byte
    character split across two reads comes out intact.

    `feed` runs once per network read of every streamed answer (about once per token),
    so it is one loop with the `data:` line first, not a method call per line.
    """

    def __init__(self) -> None:
        self._pending = b""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[str]:
        """Add bytes; return the data of every event they completed."""
        if self._pending:
            chunk = self._pending + chunk
        lines = chunk.split(b"\n")
        self._pending = lines.pop()
        events: list[str] = []
        data = self._data
        for line in lines:
            if line[:5] == b"data:":
                value = line[5:]
                if value[-1:] == b"\r":
                    value = value[:-1]
                if value[:1] == b" ":
                    value = value[1:]
                data.append(value.decode("utf-8", "replace"))
            elif not line or line == b"\r":
                if data:
                    events.append(data[0] if len(data) == 1 else "\n".join(data))
                    data.clear()
            elif line == b"data" or line == b"data\r":
                data.append("")  # a field without a colon has an empty value
        return events

    def flush(self) -> list[str]:
        """End of body: return the data of an event left without its blank line."""
        events = self.feed(b"\n") if self._pending else []
        if self._data:
            events.append("\n".join(self._data))
            self._data.clear()
        return events
