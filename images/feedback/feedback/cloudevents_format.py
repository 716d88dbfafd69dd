"""A CloudEvents data format that keeps the event data as the exact bytes received.

The SDK's JSON format parses JSON data into a dict; the collector wants the original bytes (forwarded unchanged
unless redaction changes them) and parses them itself, so that it can answer precisely what is wrong with them.
"""

from __future__ import annotations

from typing import Any

from cloudevents.core.formats.json import JSONFormat


class RawDataFormat(JSONFormat):
    """JSON event format (for structured mode) whose binary-mode data stays raw bytes."""

    def read_data(self, body: bytes, datacontenttype: str | None) -> bytes:
        return bytes(body)

    def write_data(self, data: Any, datacontenttype: str | None) -> bytes:
        if isinstance(data, bytes | bytearray):
            return bytes(data)
        return super().write_data(data, datacontenttype)
