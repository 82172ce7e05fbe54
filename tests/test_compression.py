"""Compression: Accept-Encoding negotiation, round trips, thresholds, and bombs refused."""
from __future__ import annotations

import gzip
import os
import struct
import time
import tracemalloc
import zlib

import pytest
from pydantic import ValidationError

from edge.compression import (
    BR,
    GZIP,
    ZSTD,
    CompressionConfig,
    StreamCompressor,
    add_vary_accept_encoding,
    brotli_available,
    choose_encoding,
    compress,
    compress_response,
    decompress_request,
    stream_compressor,
    zstd_available,
)
from transcoding import errors

BOTH = (BR, GZIP)
ALL = (BR, ZSTD, GZIP)
needs_brotli = pytest.mark.skipif(not brotli_available(), reason="brotli >= 1.2 not installed")
needs_zstd = pytest.mark.skipif(not zstd_available(), reason="neither compression.zstd nor backports.zstd installed")

JSON = [(b"content-type", b"application/json")]
DOC = b'{"books":[' + b",".join(b'{"title":"Dune %d","author":"Frank Herbert"}' % i for i in range(100)) + b"]}"


@pytest.mark.parametrize(
    "header, available, expected",
    [
        (None, BOTH, None),
        ("", BOTH, None),
        ("gzip", BOTH, GZIP),
        ("GZip", BOTH, GZIP),
        ("x-gzip", BOTH, GZIP),
        ("br", BOTH, BR),
        ("gzip, deflate, br", BOTH, BR),  # equal q: br preferred
        ("gzip, br", (GZIP,), GZIP),  # br not on offer
        ("br;q=0.5, gzip", BOTH, GZIP),
        ("br;q=1.0, gzip;q=0.999", BOTH, BR),
        ("gzip;q=0", BOTH, None),
        ("gzip;Q=0.000", BOTH, None),
        ("deflate", BOTH, None),  # nothing we offer
        ("identity", BOTH, None),
        ("*", BOTH, BR),
        ("*;q=0", BOTH, None),
        ("*, br;q=0", BOTH, GZIP),  # explicit entry beats '*'
        ("*;q=0.1, gzip;q=0.5", BOTH, GZIP),
        ("gzip;q=0.8", BOTH, GZIP),  # unlisted identity is only the fallback
        ("gzip;q=0.5, identity", BOTH, None),  # identity explicitly preferred
        ("gzip;q=0.5, identity;q=0.5", BOTH, GZIP),  # ties go to compression
        ("gzip, identity;q=0", BOTH, GZIP),
        ("identity;q=0", BOTH, None),  # nothing acceptable: send identity anyway (RFC 9110 12.5.3)
        ("gzip;q=2", BOTH, None),  # invalid q-values ignore the element
        ("gzip;q=0.1234", BOTH, None),
        ("gzip;q=abc, br;q=0.1", BOTH, BR),
        ("gzip ; q=0.7 , br ; q=0.6", BOTH, GZIP),
        ("gzip;level=1", BOTH, GZIP),  # other parameters ignored
        (",, gzip ,", BOTH, GZIP),
        ("gzip;q=0, gzip", BOTH, None),  # first mention wins
        ("zstd", BOTH, None),  # not on offer
        ("zstd", ALL, ZSTD),
        ("gzip, deflate, br, zstd", ALL, BR),  # what Chrome sends: equal q, br first
        ("gzip, zstd", ALL, ZSTD),  # equal q: zstd before gzip
        ("zstd;q=0.9, br;q=0.8, gzip", ALL, GZIP),
        ("zstd;q=0.9, br;q=0.8", ALL, ZSTD),
        ("br;q=0, zstd;q=0.1", ALL, ZSTD),
        ("*, br;q=0", ALL, ZSTD),
        ("ZSTD;Q=1", ALL, ZSTD),
        ("zstd;q=0, *;q=0.5", (ZSTD, GZIP), GZIP),
    ],
)
def test_choose_encoding(header, available, expected) -> None:
    assert choose_encoding(header, available) == expected


@pytest.mark.parametrize("encoding", [GZIP, pytest.param(BR, marks=needs_brotli), pytest.param(ZSTD, marks=needs_zstd)])
def test_round_trip_through_the_request_decoder(encoding: str) -> None:
    packed = compress(DOC, encoding)
    assert len(packed) < len(DOC)
    assert decompress_request(packed, encoding, 1 << 20) == DOC


def test_gzip_responses_are_standard_gzip() -> None:
    assert gzip.decompress(compress(DOC, GZIP)) == DOC


def test_request_decoding_variants() -> None:
    assert decompress_request(b"plain", None, 10) == b"plain"
    assert decompress_request(b"plain", "identity", 10) == b"plain"
    assert decompress_request(zlib.compress(DOC), "deflate", 1 << 20) == DOC
    assert decompress_request(compress(DOC, GZIP), "X-GZIP", 1 << 20) == DOC
    two_members = gzip.compress(b"hello ") + gzip.compress(b"world")
    assert decompress_request(two_members, "gzip", 100) == b"hello world"
    assert decompress_request(gzip.compress(b"x" * 100), "gzip", 100) == b"x" * 100  # exactly at the limit


@pytest.mark.parametrize(
    "body, encoding, error, status, message",
    [
        (b"not gzip at all", "gzip", errors.BadRequest, 400, "not valid gzip"),
        (gzip.compress(DOC)[:-20], "gzip", errors.BadRequest, 400, "truncated"),
        (gzip.compress(DOC) + b"junk", "gzip", errors.BadRequest, 400, "not valid gzip"),
        (zlib.compress(DOC) + b"junk", "deflate", errors.BadRequest, 400, "after the end"),
        (DOC, "compress", errors.UnsupportedMediaType, 415, "'compress' is not supported"),
        (DOC, "gzip, gzip", errors.UnsupportedMediaType, 415, "only one content coding"),
        (gzip.compress(b"x" * 101), "gzip", errors.PayloadTooLarge, 413, "more than the limit of 100 bytes"),
    ],
)
def test_bad_request_bodies_are_client_errors(body, encoding, error, status, message) -> None:
    with pytest.raises(error, match=message) as caught:
        decompress_request(body, encoding, 100 if error is errors.PayloadTooLarge else 1 << 20)
    assert type(caught.value) is error and caught.value.http_status == status


def gzip_of_zeros(mib: int) -> bytes:
    """A valid gzip of `mib` MiB of zeros, built without compressing them all:
    one fully flushed 1 MiB deflate block, repeated (each stands alone)."""
    zero_mib = bytes(1 << 20)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = packer.compress(zero_mib) + packer.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(zero_mib, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", crc, (mib << 20) & 0xFFFFFFFF)
    return header + block * mib + packer.flush(zlib.Z_FINISH) + trailer


def test_the_bomb_builder_makes_real_gzip() -> None:
    assert gzip.decompress(gzip_of_zeros(3)) == bytes(3 << 20)


def test_compression_bomb_is_refused_after_at_most_the_limit() -> None:
    bomb = gzip_of_zeros(1024)  # 1 GiB of zeros in ~1 MiB
    assert len(bomb) < 2 << 20
    limit = 4 << 20
    tracemalloc.start()
    try:
        started = time.perf_counter()
        with pytest.raises(errors.PayloadTooLarge, match=f"limit of {limit} bytes"):
            decompress_request(bomb, "gzip", limit)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * limit  # the limit's worth of output, not the gigabyte
    assert elapsed < 5  # loose: inflating the whole bomb would take far longer


@needs_brotli
def test_brotli_bomb_is_refused_too() -> None:
    import brotli

    packer = brotli.Compressor(quality=1)
    parts = [packer.process(bytes(1 << 20)) for _ in range(256)]  # 256 MiB of zeros
    bomb = b"".join(parts) + packer.finish()
    limit = 4 << 20
    tracemalloc.start()
    try:
        with pytest.raises(errors.PayloadTooLarge):
            decompress_request(bomb, "br", limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * limit
    with pytest.raises(errors.BadRequest, match="truncated br"):
        decompress_request(compress(DOC, BR)[:-5], "br", 1 << 20)


def test_response_compressed_when_worthwhile() -> None:
    config = CompressionConfig(algorithms=["gzip"])
    headers = JSON + [(b"content-length", str(len(DOC)).encode())]
    body = compress_response(config, "gzip, br", headers, DOC)
    assert gzip.decompress(body) == DOC
    assert dict(headers) == {
        b"content-type": b"application/json",
        b"vary": b"Accept-Encoding",
        b"content-encoding": b"gzip",
        b"content-length": str(len(body)).encode(),
    }


def test_response_left_alone_when_it_should_be() -> None:
    config = CompressionConfig(algorithms=["gzip"], min_size=1024)
    cases = {
        "below threshold": (config, "gzip", list(JSON), DOC[:1000], {}),
        "client declines": (config, None, list(JSON), DOC, {}),
        "disabled": (CompressionConfig(enabled=False), "gzip", list(JSON), DOC, {}),
        "opted out": (config, "gzip", list(JSON), DOC, {"opted_out": True}),
        "already encoded": (config, "gzip", JSON + [(b"content-encoding", b"br")], DOC, {}),
        "png": (config, "gzip", [(b"content-type", b"image/png")], DOC, {}),
        "zip": (config, "gzip", [(b"content-type", b"application/zip; x=y")], DOC, {}),
        "incompressible": (config, "gzip", list(JSON), os.urandom(4096), {}),
    }
    for name, (cfg, accept, headers, body, kw) in cases.items():
        before = list(headers)
        assert compress_response(cfg, accept, headers, body, **kw) is body, name
        encodings = [v for k, v in headers if k == b"content-encoding"]
        assert encodings == ([b"br"] if name == "already encoded" else []), name
        assert {k for k, _ in headers} - {k for k, _ in before} <= {b"vary"}, name


def test_svg_is_compressed_unless_listed_exactly() -> None:
    svg = [(b"content-type", b"image/svg+xml")]
    assert compress_response(CompressionConfig(algorithms=["gzip"]), "gzip", list(svg), DOC) != DOC
    config = CompressionConfig(algorithms=["gzip"], excluded_content_types=["image/svg+xml"])
    assert compress_response(config, "gzip", list(svg), DOC) is DOC


@needs_brotli
def test_brotli_preferred_when_installed() -> None:
    headers = list(JSON)
    body = compress_response(CompressionConfig(), "gzip, deflate, br", headers, DOC)
    assert dict(headers)[b"content-encoding"] == b"br"
    assert decompress_request(body, "br", 1 << 20) == DOC


def test_vary_is_merged() -> None:
    headers = [(b"vary", b"Origin")]
    add_vary_accept_encoding(headers)
    add_vary_accept_encoding(headers)
    assert headers == [(b"vary", b"Origin, Accept-Encoding")]
    star = [(b"vary", b"*")]
    add_vary_accept_encoding(star)
    assert star == [(b"vary", b"*")]


def _inflater(encoding: str):
    if encoding == GZIP:
        z = zlib.decompressobj(31)
        return z.decompress
    if encoding == ZSTD:
        from edge.compression import zstd

        return zstd.ZstdDecompressor().decompress
    import brotli

    return brotli.Decompressor().process


@pytest.mark.parametrize("encoding", [GZIP, pytest.param(BR, marks=needs_brotli), pytest.param(ZSTD, marks=needs_zstd)])
def test_stream_lines_are_decodable_as_they_arrive(encoding: str) -> None:
    packer = StreamCompressor(encoding)
    inflate = _inflater(encoding)
    received = b""
    for i in range(20):
        line = b'{"n":%d,"title":"Dune"}\n' % i
        received += inflate(packer.compress(line))
        assert received.endswith(line)  # nothing held back for later
    received += inflate(packer.finish())
    assert received.count(b"\n") == 20


def test_stream_compressor_sets_headers_or_stays_away() -> None:
    config = CompressionConfig(algorithms=["gzip"])
    headers = [(b"content-type", b"application/x-ndjson")]
    packer = stream_compressor(config, "gzip", headers)
    assert packer is not None and packer.encoding == GZIP
    assert dict(headers) == {b"content-type": b"application/x-ndjson", b"vary": b"Accept-Encoding", b"content-encoding": b"gzip"}
    assert stream_compressor(config, None, [(b"content-type", b"application/x-ndjson")]) is None
    assert stream_compressor(config, "gzip", [(b"content-type", b"application/x-ndjson")], opted_out=True) is None
    no_streams = CompressionConfig(algorithms=["gzip"], compress_streams=False)
    assert stream_compressor(no_streams, "gzip", [(b"content-type", b"application/x-ndjson")]) is None


def test_route_opt_out_by_template_method_and_service() -> None:
    config = CompressionConfig(
        opt_out=["/v1/files/{name=**}", "edgedemo.library.v1.Library/GetBook", "edgedemo.users.v1.Users/*"]
    )
    assert config.route_opted_out("edgedemo.files.v1.Files/Get", "/v1/files/{name=**}")
    assert config.route_opted_out("edgedemo.library.v1.Library/GetBook", "/v1/books/{id}")
    assert not config.route_opted_out("edgedemo.library.v1.Library/ListBooks", "/v1/books")
    assert config.route_opted_out("edgedemo.users.v1.Users/GetUser", "/v1/users/{id}")
    assert not config.route_opted_out("edgedemo.users.v1.UsersAdmin/GetUser", "/v1/admin/users/{id}")
    assert not config.route_opted_out(None, None)


def test_config_errors_name_the_problem() -> None:
    with pytest.raises(ValidationError, match="names no method"):
        CompressionConfig(opt_out=["Library.GetBook"])
    with pytest.raises(ValidationError, match="not a media type"):
        CompressionConfig(excluded_content_types=["images"])
    with pytest.raises(ValidationError, match="levle"):
        CompressionConfig(levle=5)
    assert CompressionConfig(min_size="2KiB", max_decompressed_bytes="1MiB").min_size == 2048
    assert CompressionConfig().decompression_limit(4096) == 4096
    assert CompressionConfig(max_decompressed_bytes=100).decompression_limit(4096) == 100


# ---- zstd (RFC 8878; RFC 9659 for HTTP) -------------------------------------------------------


@needs_zstd
def test_zstd_frames_and_defaults() -> None:
    from edge.compression import zstd

    assert zstd.decompress(compress(DOC, ZSTD)) == DOC  # a standard frame any zstd decoder reads
    two_frames = zstd.compress(b"hello ") + zstd.compress(b"world")
    assert decompress_request(two_frames, "zstd", 100) == b"hello world"
    assert decompress_request(zstd.compress(b"x" * 100), "zstd", 100) == b"x" * 100  # exactly at the limit
    assert decompress_request(zstd.compress(b"x" * 100), "ZSTD", 100) == b"x" * 100
    assert ZSTD in CompressionConfig().available()
    assert CompressionConfig().available().index(BR if brotli_available() else ZSTD) == 0
    assert CompressionConfig(zstd_level=19).level_for(ZSTD) == 19
    with pytest.raises(ValidationError, match="less than or equal to 19"):
        CompressionConfig(zstd_level=22)


@needs_zstd
@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda z: b"not zstd at all", errors.BadRequest, "not valid zstd"),
        (lambda z: z.compress(DOC)[:-7], errors.BadRequest, "truncated zstd"),
        (lambda z: z.compress(DOC) + b"junk", errors.BadRequest, "not valid zstd"),
        (lambda z: z.compress(b"x" * 101), errors.PayloadTooLarge, "more than the limit of 100 bytes"),
        (lambda z: z.compress(b"x" * 60) + z.compress(b"y" * 60), errors.PayloadTooLarge, "limit of 100 bytes"),
    ],
)
def test_bad_zstd_bodies_are_client_errors(make, error, message) -> None:
    from edge.compression import zstd

    limit = 100 if error is errors.PayloadTooLarge else 1 << 20
    with pytest.raises(error, match=message):
        decompress_request(make(zstd), "zstd", limit)


@needs_zstd
def test_zstd_bomb_is_refused_after_at_most_the_limit() -> None:
    from edge.compression import zstd

    packer = zstd.ZstdCompressor(level=1)
    zero_mib = bytes(1 << 20)
    bomb = b"".join(packer.compress(zero_mib) for _ in range(256)) + packer.flush()  # 256 MiB of zeros
    assert len(bomb) < 1 << 20
    limit = 4 << 20
    tracemalloc.start()
    try:
        with pytest.raises(errors.PayloadTooLarge, match=f"limit of {limit} bytes"):
            decompress_request(bomb, "zstd", limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * limit


@needs_zstd
def test_zstd_window_past_rfc_9659_and_the_limit_is_refused_before_decoding() -> None:
    from edge.compression import zstd

    # A frame whose window is 16 MiB (an encoder may ask for up to 2 GiB): over 8 MiB and the 4 MiB limit.
    wide = {zstd.CompressionParameter.window_log: 27}
    big = zstd.compress(os.urandom(64) * (1 << 18), options=wide)
    assert zstd.get_frame_info(big).decompressed_size == 16 << 20
    with pytest.raises(errors.BadRequest, match="not valid zstd"):
        decompress_request(big, "zstd", 4 << 20)
    # The same frame is fine when the operator's limit is above it: memory stays within the limit's order.
    assert len(decompress_request(big, "zstd", 32 << 20)) == 16 << 20
