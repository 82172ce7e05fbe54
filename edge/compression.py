"""Response compression and request decompression, as pure functions over bytes.

Responses: gzip always, brotli when the optional `brotli` package (>= 1.2) is
installed (`pip install edge-gateway[brotli]`), zstd (RFC 8878, as HTTP uses it
per RFC 9659) from Python's `compression.zstd` (3.14+) or, before 3.14, its
backport `backports.zstd` (`pip install edge-gateway[zstd]`): the same module
under another name, so the code does not change when the interpreter does.
The coding is chosen from the client's Accept-Encoding by RFC 9110 q-values;
ties go to br, then zstd, then gzip (br's built-in dictionary makes the
smallest small JSON replies, which is what a mobile link pays for; zstd is
cheaper to produce than both). Small bodies, already-compressed media types and
opted-out routes go out as they are, as does any body that compression would
not make smaller.

Streams (NDJSON) are compressed too when the client accepts it:
`StreamCompressor` sync-flushes after every chunk so each line reaches the
client when it is written, at a cost of a few bytes per line.

Requests: a gzip, deflate (zlib), br or zstd body is inflated incrementally and
refused (413) as soon as it would exceed the limit, so a compression bomb
costs at most `limit + 1` bytes of output, never its full expansion. A zstd
frame may also ask for a window of up to 2 GiB of decoder memory: a frame
whose window passes both 8 MiB (RFC 9659's limit for HTTP) and the body limit
is refused (400) before any of it is allocated.
"""
from __future__ import annotations

import re
import zlib
from functools import cached_property, lru_cache
from typing import Any, Iterable, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from transcoding import errors

from .matching import Matcher, MatchList, Target
from .units import ByteSize

try:
    import brotli
except ImportError:  # optional extra
    brotli = None

try:  # Python 3.14+: the standard library's own
    from compression import zstd  # type: ignore[import-not-found]
except ImportError:
    try:  # before 3.14: the same module, backported (optional extra)
        from backports import zstd  # type: ignore[import-not-found,no-redef]
    except ImportError:
        zstd = None

GZIP = "gzip"
BR = "br"
ZSTD = "zstd"
# RFC 9659: a zstd-coded HTTP body's window is at most 8 MiB (2**23), so decoders can bound memory.
ZSTD_WINDOW_LOG_MAX = 23
RawHeaders = list[tuple[bytes, bytes]]


def brotli_available() -> bool:
    """brotli >= 1.2: older releases cannot bound decompressed output."""
    return brotli is not None and hasattr(brotli.Decompressor(), "can_accept_more_data")


def zstd_available() -> bool:
    """compression.zstd (Python 3.14+) or backports.zstd."""
    return zstd is not None


DEFAULT_EXCLUDED = (
    "image/*",  # except image/svg+xml, which is text
    "video/*",
    "audio/*",
    "font/woff",
    "font/woff2",
    "application/zip",
    "application/gzip",
    "application/x-gzip",
    "application/x-bzip2",
    "application/x-xz",
    "application/zstd",
    "application/x-7z-compressed",
    "application/x-rar-compressed",
    "application/pdf",
)


class CompressionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    min_size: ByteSize = Field(1024, ge=0, description="smaller response bodies are sent uncompressed")
    gzip_level: int = Field(6, ge=1, le=9)
    brotli_quality: int = Field(4, ge=0, le=11, description="11 is far too slow for per-request use")
    zstd_level: int = Field(
        3, ge=1, le=19, description="zstd's default is 3; levels past 19 need windows over RFC 9659's 8 MiB"
    )
    algorithms: list[Literal["br", "zstd", "gzip"]] | None = Field(
        None, description="response encodings offered, best first; default: br and zstd (those installed), gzip"
    )
    excluded_content_types: list[str] = Field(default_factory=lambda: list(DEFAULT_EXCLUDED))
    compress_streams: bool = True
    max_decompressed_bytes: ByteSize | None = Field(
        None, gt=0, description="limit for inflated request bodies; default: transcoding.max_body_bytes"
    )
    opt_out: MatchList = Field(
        default_factory=list,
        description="routes never compressed, as match patterns (edge/matching.py): "
        "'/v1/files/{name}', 'GET /v1/files/*', 'pkg.Service/Method', 'pkg.Service/*'",
    )

    _opt_out: Matcher[bool] = PrivateAttr()
    _exact_types: frozenset[str] = PrivateAttr(frozenset())
    _major_types: frozenset[str] = PrivateAttr(frozenset())

    @field_validator("algorithms")
    @classmethod
    def _installed(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and BR in value and not brotli_available():
            raise ValueError("'br' needs the brotli package (>= 1.2): pip install 'edge-gateway[brotli]'")
        if value is not None and ZSTD in value and not zstd_available():
            raise ValueError("'zstd' needs Python 3.14 or the backports.zstd package: pip install 'edge-gateway[zstd]'")
        return value

    @field_validator("excluded_content_types")
    @classmethod
    def _media_types(cls, value: list[str]) -> list[str]:
        out = []
        for item in value:
            item = item.strip().lower()
            if not re.fullmatch(r"[a-z0-9!#$&^_.+-]+/(\*|[a-z0-9!#$&^_.+-]+)", item):
                raise ValueError(f"{item!r} is not a media type like 'image/*' or 'application/zip'")
            out.append(item)
        return out

    def model_post_init(self, __context: Any) -> None:
        self._opt_out = Matcher([(self.opt_out, True)])
        self._exact_types = frozenset(t for t in self.excluded_content_types if not t.endswith("/*"))
        self._major_types = frozenset(t[:-2] for t in self.excluded_content_types if t.endswith("/*"))

    def available(self) -> tuple[str, ...]:
        """Response encodings on offer, in order of preference."""
        if self.algorithms is not None:
            return tuple(self.algorithms)
        return _DEFAULT_AVAILABLE

    def route_opted_out(self, full_method: str | None, template: str | None, http_method: str | None = None) -> bool:
        """True when an `opt_out` pattern matches the route (by method, template or verb and template).
        Answers are kept per route: patterns are matched once, not per request."""
        key = (full_method, template, http_method)
        verdicts = self._opt_out_verdicts
        verdict = verdicts.get(key)
        if verdict is None:
            verdict = self._opt_out.any(Target(full_method or "", (http_method or "").upper(), template or ""))
            if len(verdicts) < 10_000:  # routes are few; a bound all the same
                verdicts[key] = verdict
        return verdict

    @cached_property
    def _opt_out_verdicts(self) -> dict[tuple[str | None, str | None, str | None], bool]:
        return {}

    @cached_property
    def _verdicts(self) -> dict[str, bool]:
        """compressible() per content type: responses carry a handful of them, and the
        private-attribute lookups below cost ~3.5 µs per request (pydantic's __getattr__)."""
        return {}

    def compressible(self, content_type: str | None) -> bool:
        if not content_type:
            return False
        verdicts = self._verdicts
        verdict = verdicts.get(content_type)
        if verdict is None:
            verdict = self._compressible(content_type)
            if len(verdicts) < 256:  # content types come from backends; a bound all the same
                verdicts[content_type] = verdict
        return verdict

    def _compressible(self, content_type: str) -> bool:
        mime = content_type.split(";", 1)[0].strip().lower()
        if mime in self._exact_types:
            return False
        if mime == "image/svg+xml":
            return True
        return mime.partition("/")[0] not in self._major_types

    def decompression_limit(self, max_body_bytes: int) -> int:
        return self.max_decompressed_bytes if self.max_decompressed_bytes is not None else max_body_bytes

    def level_for(self, encoding: str) -> int:
        if encoding == BR:
            return self.brotli_quality
        return self.zstd_level if encoding == ZSTD else self.gzip_level


# The default offer, best first: what is installed, fixed at import.
_DEFAULT_AVAILABLE = tuple(
    coding for coding, present in ((BR, brotli_available()), (ZSTD, zstd_available()), (GZIP, True)) if present
)


# --- choosing an encoding ---------------------------------------------------------

_QVALUE = re.compile(r"^(0(\.[0-9]{0,3})?|1(\.0{0,3})?)$")
_ALIASES = {"x-gzip": GZIP}


def _parse_accept_encoding(header: str) -> dict[str, float]:
    """coding -> q; elements with an invalid q-value are ignored; first mention wins."""
    weights: dict[str, float] = {}
    for element in header.split(","):
        coding, *params = element.split(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        q = 1.0
        for param in params:
            name, _, val = param.partition("=")
            if name.strip().lower() == "q":
                val = val.strip()
                if not _QVALUE.match(val):
                    q = -1.0
                    break
                q = float(val)
        if q < 0:
            continue
        weights.setdefault(_ALIASES.get(coding, coding), q)
    return weights


@lru_cache(maxsize=512)
def _choose(accept_encoding: str, available: tuple[str, ...]) -> str | None:
    weights = _parse_accept_encoding(accept_encoding)
    star = weights.get("*")
    best, best_q = None, 0.0
    for coding in available:  # in preference order: strict '>' keeps the preferred one on ties
        q = weights.get(coding, star if star is not None else 0.0)
        if q > best_q:
            best, best_q = coding, q
    if best is None:
        return None
    identity = weights.get("identity", star)
    if identity is not None and identity > best_q:
        return None  # the client explicitly prefers no coding
    return best


def choose_encoding(accept_encoding: str | None, available: Sequence[str]) -> str | None:
    """The response coding to use, or None for identity (RFC 9110 section 12.5.3).

    Codings are weighed by q (`*` covers the unlisted ones, q=0 forbids);
    among equals the earlier entry of `available` wins. Identity is always
    acceptable as the fallback; it beats a coding only when the client gives
    it (explicitly or through `*`) a higher q. No header: no compression."""
    if not accept_encoding:
        return None
    return _choose(accept_encoding, tuple(available))


# --- responses ------------------------------------------------------------------------


def compress(body: bytes, encoding: str, *, level: int | None = None) -> bytes:
    if encoding == GZIP:
        return zlib.compress(body, 6 if level is None else level, wbits=31)
    if encoding == BR and brotli is not None:
        return brotli.compress(body, quality=4 if level is None else level)
    if encoding == ZSTD and zstd is not None:
        return zstd.compress(body, level=3 if level is None else level)
    raise ValueError(f"unsupported response encoding {encoding!r}")


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def add_vary_accept_encoding(headers: RawHeaders) -> None:
    """Vary: Accept-Encoding, merged into an existing Vary header."""
    for i, (key, value) in enumerate(headers):
        if key.lower() == b"vary":
            tokens = [t.strip().lower() for t in value.split(b",")]
            if b"*" not in tokens and b"accept-encoding" not in tokens:
                headers[i] = (key, value + b", Accept-Encoding")
            return
    headers.append((b"vary", b"Accept-Encoding"))


def set_content_encoding(headers: RawHeaders, encoding: str, length: int | None) -> None:
    """Content-Encoding set; an existing Content-Length replaced by `length` (dropped if None)."""
    out = [(k, v) for k, v in headers if k.lower() not in (b"content-encoding", b"content-length")]
    out.append((b"content-encoding", encoding.encode("ascii")))
    if length is not None and _header(headers, b"content-length") is not None:
        out.append((b"content-length", str(length).encode("ascii")))
    headers[:] = out


def compress_response(
    config: CompressionConfig,
    accept_encoding: str | None,
    headers: RawHeaders,
    body: bytes,
    *,
    opted_out: bool = False,
) -> bytes:
    """The body to send, compressed when worthwhile; `headers` are updated in place
    (Content-Encoding, Vary, any Content-Length fixed)."""
    if not config.enabled or opted_out or _header(headers, b"content-encoding") is not None:
        return body
    content_type = _header(headers, b"content-type")
    if not config.compressible(content_type.decode("latin-1") if content_type else None):
        return body
    add_vary_accept_encoding(headers)
    if len(body) < config.min_size:
        return body
    encoding = choose_encoding(accept_encoding, config.available())
    if encoding is None:
        return body
    compressed = compress(body, encoding, level=config.level_for(encoding))
    if len(compressed) >= len(body):
        return body
    set_content_encoding(headers, encoding, len(compressed))
    return compressed


class StreamCompressor:
    """Compresses a response stream chunk by chunk, flushing each chunk to the wire."""

    def __init__(self, encoding: str, level: int | None = None) -> None:
        self.encoding = encoding
        self._z = self._br = self._zstd = None
        if encoding == GZIP:
            self._z = zlib.compressobj(6 if level is None else level, zlib.DEFLATED, 31)
        elif encoding == BR and brotli is not None:
            self._br = brotli.Compressor(quality=4 if level is None else level)
        elif encoding == ZSTD and zstd is not None:
            self._zstd = zstd.ZstdCompressor(level=3 if level is None else level)
        else:
            raise ValueError(f"unsupported response encoding {encoding!r}")

    def compress(self, chunk: bytes) -> bytes:
        if self._z is not None:
            return self._z.compress(chunk) + self._z.flush(zlib.Z_SYNC_FLUSH)
        if self._zstd is not None:  # FLUSH_BLOCK: what is written so far can be decoded now
            return self._zstd.compress(chunk, self._zstd.FLUSH_BLOCK)
        return self._br.process(chunk) + self._br.flush()

    def finish(self) -> bytes:
        if self._z is not None:
            return self._z.flush(zlib.Z_FINISH)
        if self._zstd is not None:
            return self._zstd.flush(self._zstd.FLUSH_FRAME)
        return self._br.finish()


def stream_compressor(
    config: CompressionConfig,
    accept_encoding: str | None,
    headers: RawHeaders,
    *,
    opted_out: bool = False,
) -> StreamCompressor | None:
    """A compressor for a streamed response (and its headers updated), or None to stream as is."""
    if not (config.enabled and config.compress_streams) or opted_out:
        return None
    if _header(headers, b"content-encoding") is not None:
        return None
    content_type = _header(headers, b"content-type")
    if not config.compressible(content_type.decode("latin-1") if content_type else None):
        return None
    add_vary_accept_encoding(headers)
    encoding = choose_encoding(accept_encoding, config.available())
    if encoding is None:
        return None
    set_content_encoding(headers, encoding, None)
    return StreamCompressor(encoding, config.level_for(encoding))


# --- requests -----------------------------------------------------------------------------


def request_encodings() -> tuple[str, ...]:
    """Content-Encodings accepted on request bodies."""
    return _REQUEST_ENCODINGS


_REQUEST_ENCODINGS = ("gzip", "x-gzip", "deflate") + (("br",) if brotli_available() else ()) + (
    ("zstd",) if zstd_available() else ()
)


def decompress_request(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """The request body decoded per its Content-Encoding, at most `limit` bytes.

    Raises PayloadTooLarge (413) once the output would pass `limit`, having
    produced at most `limit + 1` bytes; UnsupportedMediaType (415) for a coding
    the gateway does not take; BadRequest (400) for corrupt or truncated data."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return body
    if len(codings) > 1:
        raise errors.UnsupportedMediaType(
            f"Content-Encoding {content_encoding!r}: only one content coding per request is accepted",
            field="content-encoding",
        )
    coding = codings[0]
    if coding not in request_encodings():
        raise errors.UnsupportedMediaType(
            f"Content-Encoding {coding!r} is not supported; use one of: {', '.join(request_encodings())}",
            field="content-encoding",
        )
    if coding == "br":
        return _inflate_brotli(body, limit)
    if coding == ZSTD:
        return _inflate_zstd(body, limit)
    return _inflate_zlib(body, 31 if coding in ("gzip", "x-gzip") else 15, coding, limit)


def _too_large(limit: int) -> errors.PayloadTooLarge:
    return errors.PayloadTooLarge(f"request body decompresses to more than the limit of {limit} bytes")


def _inflate_zlib(body: bytes, wbits: int, coding: str, limit: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    data = body
    while True:  # a gzip body may hold several members, one after the other
        inflater = zlib.decompressobj(wbits)
        try:
            out = inflater.decompress(data, limit + 1 - total)  # max_length >= 1 here: 0 would mean unbounded
        except zlib.error as exc:
            raise errors.BadRequest(f"request body is not valid {coding} data: {exc}", field="content-encoding") from None
        total += len(out)
        if total > limit:
            raise _too_large(limit)
        parts.append(out)
        if not inflater.eof:
            raise errors.BadRequest(f"request body is truncated {coding} data", field="content-encoding")
        data = inflater.unused_data
        if not data:
            break
        if wbits != 31:
            raise errors.BadRequest(f"request body has data after the end of the {coding} stream", field="content-encoding")
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _inflate_brotli(body: bytes, limit: int) -> bytes:
    inflater = brotli.Decompressor()
    try:
        out = inflater.process(body, output_buffer_limit=limit + 1)
    except brotli.error as exc:
        raise errors.BadRequest(f"request body is not valid br data: {exc}", field="content-encoding") from None
    if len(out) > limit or not inflater.can_accept_more_data():
        raise _too_large(limit)
    if not inflater.is_finished():
        raise errors.BadRequest("request body is truncated br data", field="content-encoding")
    return out


def _inflate_zstd(body: bytes, limit: int) -> bytes:
    """Frame after frame (RFC 8878 allows several, and skippable ones), at most `limit + 1`
    bytes of output in all. A window over RFC 9659's 8 MiB is refused before it is allocated,
    unless the limit itself is larger (a one-shot frame's window is its whole content)."""
    parts: list[bytes] = []
    total = 0
    data = body
    window_log = max(ZSTD_WINDOW_LOG_MAX, min(31, limit.bit_length()))
    options = {zstd.DecompressionParameter.window_log_max: window_log}
    while True:
        inflater = zstd.ZstdDecompressor(options=options)
        try:
            out = inflater.decompress(data, limit + 1 - total)
        except zstd.ZstdError as exc:
            raise errors.BadRequest(f"request body is not valid zstd data: {exc}", field="content-encoding") from None
        total += len(out)
        if total > limit:
            raise _too_large(limit)
        parts.append(out)
        if not inflater.eof:
            if not inflater.needs_input:  # output is waiting beyond max_length: over the limit
                raise _too_large(limit)
            raise errors.BadRequest("request body is truncated zstd data", field="content-encoding")
        data = inflater.unused_data
        if not data:
            break
    return parts[0] if len(parts) == 1 else b"".join(parts)
