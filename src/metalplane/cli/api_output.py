"""What `metalplane PROFILE ...` prints for a response. Pure: bytes in, bytes out."""

from __future__ import annotations

import json
from collections.abc import Mapping
from email.message import Message


def media_type(content_type: str | None) -> str:
    """`application/json; charset=utf-8` -> `application/json` ('' when absent)."""
    if not content_type:
        return ""
    message = Message()
    message["Content-Type"] = content_type
    return message.get_content_type()


def is_textual(content_type: str | None) -> bool:
    kind = media_type(content_type)
    return kind.endswith(("/json", "+json")) or kind.startswith("text/")


def render_body(content_type: str | None, content: bytes) -> bytes:
    """JSON pretty-printed (indent 4) with a final newline; other text with a final
    newline; anything else exactly as received."""
    if not content:
        return b""
    kind = media_type(content_type)
    if kind.endswith(("/json", "+json")):
        try:
            return json.dumps(json.loads(content), indent=4, ensure_ascii=False).encode("utf-8") + b"\n"
        except (ValueError, UnicodeDecodeError):
            pass
    if is_textual(content_type) and not content.endswith(b"\n"):
        return content + b"\n"
    return content


def response_summary(status: int, reason: str, headers: Mapping[str, str]) -> str:
    """The `-d/--debug` dump: status line and headers, as maascli prints them."""
    cap = {name: "-".join(part.capitalize() for part in name.split("-")) for name in headers}
    width = max((len(v) for v in cap.values()), default=0) + 2
    lines = [f"{status} {reason}", ""]
    lines += [f"{cap[name]:>{width}}: {headers[name]}" for name in sorted(headers)]
    return "\n".join(lines) + "\n"
