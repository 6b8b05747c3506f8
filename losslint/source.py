"""Reading Python source the way the interpreter would: BOM, coding cookie, newlines kept."""

from __future__ import annotations

import io
import tokenize
from dataclasses import dataclass


@dataclass(frozen=True)
class SourceText:
    text: str
    encoding: str
    bom: bool

    def encode(self, text: str) -> bytes:
        data = text.encode(self.encoding)
        return (b"\xef\xbb\xbf" + data) if self.bom else data


def decode(data: bytes) -> SourceText:
    """Decode with PEP 263 rules; raises UnicodeDecodeError / SyntaxError on bad input."""
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    bom = encoding == "utf-8-sig"
    if bom:
        data = data[3:]
        encoding = "utf-8"
    return SourceText(data.decode(encoding), encoding, bom)
