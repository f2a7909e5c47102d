"""Response bytes within bounds: gzip and deflate inflated up to a size cap, charset claims corrected for UTF-8."""

from __future__ import annotations

import re
import zlib

import httpx

from bot.errors import FetchError

_GZIP_WBITS = 16 + zlib.MAX_WBITS
_ZLIB_OR_GZIP_WBITS = 32 + zlib.MAX_WBITS
_XML_ENCODING = re.compile(rb"(\s*<\?xml[^>]*?encoding=)([\"'])([^\"']*)\2")


class _Inflater:
    """Decodes a gzip or deflate body chunk by chunk, never producing more than `limit` bytes in all.

    httpx's own decoders inflate a whole network chunk at once (64 KiB of a gzip bomb is 64 MiB);
    here `max_length` stops zlib at the cap, so memory stays bounded whatever the ratio (issue 6).
    """

    def __init__(self, encoding: str, limit: int) -> None:
        self.limit = limit
        self.produced = 0
        self.encoding = encoding
        if encoding in ("", "identity"):
            self._zlib = None
        elif encoding in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(_GZIP_WBITS)
        elif encoding == "deflate":
            self._zlib = zlib.decompressobj(_ZLIB_OR_GZIP_WBITS)
        else:
            raise FetchError(f"unsupported content encoding {encoding[:40]!r}")
        self._first = True

    def feed(self, data: bytes) -> bytes:
        """The decoded bytes of one raw chunk; FetchError once the total passes the limit."""
        room = self.limit - self.produced
        if self._zlib is None:
            out = data
        else:
            try:
                out = self._zlib.decompress(data, room + 1)
            except zlib.error:
                if not (self._first and self.encoding == "deflate"):
                    raise FetchError(f"corrupt {self.encoding} body") from None
                # Some servers send raw deflate without the zlib header.
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                out = self._zlib.decompress(data, room + 1)
        self._first = False
        self.produced += len(out)
        if self.produced > self.limit:
            suffix = " once decompressed" if self._zlib is not None else ""
            raise FetchError(f"response larger than {self.limit} bytes{suffix}")
        return out


def read_body(response: httpx.Response, max_bytes: int) -> bytes:
    """The decoded body, refusing it as soon as it passes `max_bytes` (decompressed bytes count)."""
    encoding = response.headers.get("content-encoding", "").strip().lower()
    declared = response.headers.get("content-length", "")
    if encoding in ("", "identity") and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(f"response larger than {max_bytes} bytes (Content-Length {declared})")
    inflater = _Inflater(encoding, max_bytes)
    chunks = [inflater.feed(raw) for raw in response.iter_raw()]
    return b"".join(chunks)


def correct_charset_header(content: bytes, headers: dict[str, str]) -> dict[str, str]:
    """Headers for an XML parser, the charset corrected when the body is plainly UTF-8.

    A server that says `charset=iso-8859-1` (or an XML declaration that says windows-1256) over UTF-8
    bytes would turn Urdu and Pashto text into mojibake; valid non-ASCII UTF-8 is almost never meant
    as anything else, so it wins over what the headers claim.
    """
    if content.isascii():
        return headers
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return headers
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    media = media if media.endswith("xml") else "application/xml"
    return {**headers, "content-type": f"{media}; charset=utf-8"}


def correct_xml_encoding(content: bytes) -> bytes:
    """The XML declaration's encoding made utf-8 when the bytes are UTF-8 (see `correct_charset_header`)."""
    head = content[:200]
    match = _XML_ENCODING.match(head)
    if match is None or match.group(3).lower() == b"utf-8" or content.isascii():
        return content
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return content
    return content[: match.start(3)] + b"utf-8" + content[match.end(3) :]
