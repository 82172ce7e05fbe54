"""Property-based fuzzing of the parsers a request goes through before any backend:
path templates, the path matcher, query parameters and the JSON codec.

Two kinds of property: arbitrary input never raises anything but the project's own
client-error types (so the gateway can always answer 4xx, never 500), and what a
well-behaved client encodes comes back intact (template text, path variables, query
values, proto -> JSON -> proto). Runs are bounded and derandomized (a fixed seed
derived from each test), so the suite is deterministic; `EDGE_FUZZ_EXAMPLES` sets the cost.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import math
import os
import re
import string
from urllib.parse import quote, unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transcoding.codec import RequestCodec, ResponseCodec
from transcoding.options import TranscodingOptions
from transcoding.errors import TranscodeError
from transcoding.matcher import MethodNotAllowed, NoRoute, PathEncodingError, PathMatcher, RouteConflict
from transcoding.query import QueryMapper
from transcoding.template import TemplateError, parse_template
from tests.support.kinds import pool_types

# EDGE_FUZZ_EXAMPLES=5000 for a longer hunt; the suite's default keeps this file at a few seconds.
FUZZ = settings(max_examples=int(os.environ.get("EDGE_FUZZ_EXAMPLES", "150")), deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
KT = pool_types()  # the gateway sees backend types through a pool, never generated code
KINDS = KT.Kinds.DESCRIPTOR

# ---- path templates ------------------------------------------------------------------

_LITERAL_ALPHABET = string.ascii_letters + string.digits + "-._~!$&'()+,;="
_ident = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True)
# percent-encoded characters (valid UTF-8 once decoded, as a template author writes them)
_pct = st.characters(blacklist_categories=("Cs",), blacklist_characters=_LITERAL_ALPHABET).map(lambda c: quote(c, safe=""))
_literal = st.lists(st.one_of(st.text(_LITERAL_ALPHABET, min_size=1, max_size=4), _pct), min_size=1, max_size=3).map("".join)


def _segments(draw: st.DrawFn, names: set[str], low: int, high: int) -> list[str]:
    parts: list[str] = []
    for _ in range(draw(st.integers(low, high))):
        kind = draw(st.sampled_from(["literal", "literal", "single", "var", "var_pattern"]))
        if kind == "literal":
            parts.append(draw(_literal))
        elif kind == "single":
            parts.append("*")
        else:
            name = draw(_ident.filter(lambda n: n not in names))
            names.add(name)
            if kind == "var":
                parts.append("{" + name + "}")
            else:
                inner = draw(st.lists(st.one_of(_literal, st.just("*")), min_size=1, max_size=3))
                parts.append("{" + name + "=" + "/".join(inner) + "}")
    return parts


@st.composite
def templates(draw: st.DrawFn) -> str:
    """Texts the google.api.http grammar accepts: literals, '*', variables, at most one
    '**' (alone or in a variable) followed by any more segments, and an optional verb."""
    names: set[str] = set()
    parts = _segments(draw, names, 1, 5)
    where = draw(st.sampled_from(["", "", "**", "var**", "var/**"]))
    if where:
        if where == "**":
            parts.append("**")
        else:
            name = draw(_ident.filter(lambda n: n not in names))
            names.add(name)
            parts.append("{" + name + ("=**}" if where == "var**" else "=" + draw(_literal) + "/**}"))
        parts.extend(_segments(draw, names, 0, 3))
    verb = draw(st.one_of(st.none(), _literal))
    return "/" + "/".join(parts) + (f":{verb}" if verb else "")


@FUZZ
@given(templates())
def test_grammatical_templates_parse_and_keep_their_text(text: str) -> None:
    template = parse_template(text)
    assert template.text == text
    assert str(template) == text
    multi = [i for i, s in enumerate(template.segments) if s.kind == "multi"]
    assert len(multi) <= 1
    assert len(set(template.field_paths())) == len(template.variables)


@FUZZ
@given(st.text(max_size=40))
def test_any_text_parses_or_raises_template_error(text: str) -> None:
    try:
        parse_template(text)
    except TemplateError as error:
        assert 0 <= error.position <= len(text)
        assert error.message and text in str(error) or repr(text) in str(error)


@FUZZ
@given(templates(), st.integers(0, 200), st.text(min_size=1, max_size=3))
def test_a_mutated_template_parses_or_raises_template_error(text: str, where: int, insert: str) -> None:
    where = where % (len(text) + 1)
    mutated = text[:where] + insert + text[where:]
    try:
        parse_template(mutated)
    except TemplateError as error:
        assert 0 <= error.position <= len(mutated)


# ---- path matcher -------------------------------------------------------------------

_METHODS = ["GET", "POST", "PATCH", "DELETE"]


def _matcher(route_texts: list[tuple[str, str]]) -> PathMatcher[str]:
    matcher: PathMatcher[str] = PathMatcher()
    for method, text in route_texts:
        try:
            matcher.add(method, parse_template(text), f"{method} {text}")
        except RouteConflict:
            pass
    return matcher


_raw_path_chars = st.sampled_from(list("/abv1:.%*{}~-_") + ["%2F", "%2f", "%2e", "%00", "%ff", "%C3%A9", "%zz", "//", "/./", "/../"])


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(_METHODS), templates()), min_size=1, max_size=6),
       st.sampled_from(_METHODS + ["PUT", "HEAD"]),
       st.one_of(st.lists(_raw_path_chars, max_size=20).map(lambda p: "/" + "".join(p)), st.text(max_size=30)))
def test_any_path_finds_a_route_or_a_client_error(route_texts, method: str, raw_path: str) -> None:
    matcher = _matcher(route_texts)
    try:
        match = matcher.lookup(method, raw_path)
    except MethodNotAllowed as exc:
        assert exc.allowed and method not in exc.allowed
        return
    except (NoRoute, PathEncodingError):
        return
    assert match.value.startswith(method + " ")


_segment_value = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8)


_RESERVED = "!#$&'()*+,/:;=?@[]"
_ESCAPE = re.compile("%([0-9A-Fa-f]{2})")


def _decode_keeping_reserved(raw: str) -> str:
    """One raw path segment as Envoy's all-except-reserved hands it on: every escape
    decoded (as UTF-8 bytes) except those of RFC 6570 reserved characters, kept as sent."""
    out, last = bytearray(), 0
    for m in _ESCAPE.finditer(raw):
        out += raw[last:m.start()].encode()
        byte = int(m.group(1), 16)
        out += m.group(0).encode() if chr(byte) in _RESERVED else bytes([byte])
        last = m.end()
    out += raw[last:].encode()
    return out.decode("utf-8")


@FUZZ
@given(templates(), st.data())
def test_a_path_built_from_a_template_matches_it_with_its_values(text: str, data: st.DataObject) -> None:
    """Fill every variable and wildcard of a template (a '**' with at least one segment),
    encode as http.proto says, and the matcher gives back exactly those values: one
    segment fully decoded; several with the reserved characters' escapes kept (the
    default path_unescape, Envoy's all-except-reserved)."""
    template = parse_template(text)
    segments: list[str] = []
    for segment in template.segments:
        if segment.kind == "literal":
            segments.append(segment.value)
        elif segment.kind == "single":
            segments.append(quote(data.draw(_segment_value.filter(lambda v: v not in (".", ".."))), safe=""))
        else:
            pieces = data.draw(st.lists(_segment_value.filter(lambda v: v not in (".", "..")), min_size=1, max_size=3))
            segments.append("/".join(quote(p, safe="") for p in pieces))
    raw = "/" + "/".join(segments) + (f":{template.verb}" if template.verb else "")
    match = _matcher([("GET", text)]).lookup("GET", raw)
    expected = []
    for variable in template.variables:
        covered = segments[variable.start:variable.end]
        kinds = template.segments[variable.start:variable.end]
        multi = len(covered) > 1 or kinds[0].kind == "multi"
        if multi:
            value = "/".join(_decode_keeping_reserved(p) for s in covered for p in s.split("/"))
        else:
            value = unquote(covered[0])
        expected.append((variable.field_path, value))
    assert match.bindings == expected


# ---- query parameters ---------------------------------------------------------------

_FIELD_KEYS = sorted({f.name for f in KINDS.fields} | {f.json_name for f in KINDS.fields}
                     | {"inner.name", "inner.count", "inner.child.child.tags", "inner.when", "inner.color", "choiceInner.name",
                        "w_int64s", "labels[a]", "inner_by_id", "nope", "inner.nope", "f_int32.x", ""})


@FUZZ
@given(st.lists(st.tuples(st.one_of(st.sampled_from(_FIELD_KEYS), st.text(max_size=12)),
                          st.one_of(st.sampled_from(["1", "-1", "0", "true", "RED", "9" * 30, "NaN", "-inf", "1e999",
                                                      "2024-01-01T00:00:00Z", "1.5s", "a,b", "AAEC", "{}", "[1]", "{\"a\":",
                                                      "\x00", "\udc80"]),
                                    st.text(max_size=12))),
                max_size=6))
def test_any_query_sets_fields_or_raises_bad_request(params: list[tuple[str, str]]) -> None:
    message = KT.Kinds()
    try:
        QueryMapper(KINDS).apply(message, params)
    except TranscodeError as exc:
        assert exc.http_status == 400 and exc.message
        return
    message.SerializeToString()  # whatever was accepted is a valid message


_INT_RANGES = {
    "f_int32": (-(2**31), 2**31 - 1), "f_sint32": (-(2**31), 2**31 - 1), "f_sfixed32": (-(2**31), 2**31 - 1),
    "f_int64": (-(2**63), 2**63 - 1), "f_sint64": (-(2**63), 2**63 - 1), "f_sfixed64": (-(2**63), 2**63 - 1),
    "f_uint32": (0, 2**32 - 1), "f_fixed32": (0, 2**32 - 1), "f_uint64": (0, 2**64 - 1), "f_fixed64": (0, 2**64 - 1),
}


@FUZZ
@given(st.sampled_from(sorted(_INT_RANGES)), st.integers(-(2**70), 2**70))
def test_query_integers_round_trip_or_name_the_range(field: str, number: int) -> None:
    lo, hi = _INT_RANGES[field]
    message = KT.Kinds()
    if lo <= number <= hi:
        QueryMapper(KINDS).apply(message, [(field, str(number))])
        assert getattr(message, field) == number
    else:
        with pytest.raises(TranscodeError) as info:
            QueryMapper(KINDS).apply(message, [(field, str(number))])
        assert field in info.value.message


@FUZZ
@given(st.floats(allow_nan=False), st.binary(min_size=1, max_size=20),  # an empty value is skipped, by design
       st.sampled_from(["RED", "GREEN", "BLUE", "1", "3"]),
       st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59, 59)),
       st.booleans())
def test_query_values_round_trip(number: float, blob: bytes, color: str, when: dt.datetime, urlsafe: bool) -> None:
    encoded = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(blob).decode()
    stamp = when.replace(microsecond=0).isoformat() + "Z"
    message = KT.Kinds()
    QueryMapper(KINDS).apply(message, [("fDouble", repr(number)), ("f_bytes", encoded), ("color", color),
                                       ("ts", stamp), ("blobs", encoded), ("blobs", encoded)])
    assert message.f_double == number and message.f_bytes == blob and list(message.blobs) == [blob, blob]
    assert message.color == {"RED": 1, "GREEN": 2, "BLUE": 3}.get(color, int(color) if color.isdigit() else 0)
    assert message.ts.ToJsonString() == stamp


# ---- the JSON codec -----------------------------------------------------------------

WHOLE = RequestCodec(KINDS, "*", [])
INNER_BODY = RequestCodec(KINDS, "inner", ["f_int64"])
RESPONSES = [ResponseCodec(KINDS, ""), ResponseCodec(KINDS, "", options=TranscodingOptions(use_proto_names=True)),
             ResponseCodec(KINDS, "", options=TranscodingOptions(emit_unpopulated=True))]

_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False),
                       st.text(max_size=10))
_json = st.recursive(_json_leaf, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                          st.dictionaries(st.text(max_size=6), kids, max_size=4)),
                     max_leaves=12)
_json_keys = st.sampled_from(sorted({f.json_name for f in KINDS.fields} | {f.name for f in KINDS.fields}))


def _decode_or_client_error(codec: RequestCodec, body: bytes, content_type: str | None = "application/json", path=()):
    try:
        message = codec.decode(list(path), [], body, content_type)
    except TranscodeError as exc:
        assert 400 <= exc.http_status < 500 and exc.message
        return None
    message.SerializeToString()
    return message


@FUZZ
@given(st.binary(max_size=64))
def test_any_bytes_decode_or_raise_a_client_error(body: bytes) -> None:
    _decode_or_client_error(WHOLE, body)
    _decode_or_client_error(INNER_BODY, body, path=[(("f_int64",), "7")])


@FUZZ
@given(st.dictionaries(st.one_of(_json_keys, st.text(max_size=6)), _json, max_size=5),
       st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", None, "application/json; charset=latin1"]))
def test_any_json_object_decodes_or_raises_a_client_error(value: dict, content_type: str | None) -> None:
    body = json.dumps(value).encode()
    _decode_or_client_error(WHOLE, body, content_type)
    _decode_or_client_error(INNER_BODY, body, content_type, path=[(("f_int64",), "7")])


@FUZZ
@given(st.sampled_from(["[", "{\"inner\":", "{\"st\":", "{\"val\":", "{\"listVal\":", "{\"items\":[", "{\"any\":"]),
       st.integers(1, 12_000))
def test_deep_nesting_is_a_client_error(opening: str, depth: int) -> None:
    body = (opening + "{\"child\":" * depth + "1" + "}" * depth).encode()
    _decode_or_client_error(WHOLE, body)


_FLT_MAX = 3.4028234663852886e38
# The largest finite float32s print as 3.4028235e+38, which json_format then refuses to read
# back (test_float32_max_round_trip below); every other float32, infinities included, is fine.
_f32 = st.floats(width=32, allow_nan=False).filter(lambda x: not math.isfinite(x) or abs(x) < 3.4e38)
_ts_seconds = st.integers(-62135596800, 253402300799)
_dur_seconds = st.integers(-315576000000, 315576000000)


@st.composite
def kinds_messages(draw: st.DrawFn):
    m = KT.Kinds()
    for name, (lo, hi) in _INT_RANGES.items():
        if draw(st.booleans()):
            setattr(m, name, draw(st.integers(lo, hi)))
    m.f_double = draw(st.floats(allow_nan=False))
    m.f_float = draw(_f32)
    m.f_bool = draw(st.booleans())
    m.f_string = draw(st.text(st.characters(blacklist_categories=("Cs",)), max_size=10))
    m.f_bytes = draw(st.binary(max_size=10))
    m.color = draw(st.integers(0, 3))
    if draw(st.booleans()):
        m.opt_int32 = draw(st.integers(-(2**31), 2**31 - 1))
    m.json_named = draw(st.text(st.characters(blacklist_categories=("Cs",)), max_size=3))
    m.ids.extend(draw(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=3)))
    m.tags.extend(draw(st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=4), max_size=3)))
    m.colors.extend(draw(st.lists(st.integers(0, 3), max_size=3)))
    m.ratios.extend(draw(st.lists(st.floats(allow_nan=False), max_size=3)))
    m.blobs.extend(draw(st.lists(st.binary(max_size=4), max_size=2)))
    for key, value in draw(st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=3)).items():
        m.labels[key] = value
    for key in draw(st.lists(st.integers(-(2**31), 2**31 - 1), max_size=2)):
        m.inner_by_id[key].count = draw(st.integers(-5, 5))
    node = m.inner
    for depth in range(draw(st.integers(0, 4))):
        node.name = f"level {depth}"
        node.color = draw(st.integers(0, 3))
        node = node.child
    choice = draw(st.sampled_from(["none", "name", "id", "inner"]))
    if choice == "name":
        m.choice_name = draw(st.text(st.characters(blacklist_categories=("Cs",)), max_size=4))
    elif choice == "id":
        m.choice_id = draw(st.integers(-(2**63), 2**63 - 1))
    elif choice == "inner":
        m.choice_inner.SetInParent()
    if draw(st.booleans()):
        m.ts.seconds, m.ts.nanos = draw(_ts_seconds), draw(st.integers(0, 999_999_999))
    if draw(st.booleans()):
        seconds = draw(_dur_seconds)
        nanos = draw(st.integers(0, 999_999_999))
        m.dur.seconds, m.dur.nanos = seconds, (-nanos if seconds < 0 else nanos)
    m.update_mask.paths.extend(draw(st.lists(st.sampled_from(["f_int32", "inner.name", "inner_by_id"]), max_size=2)))
    if draw(st.booleans()):
        m.w_int64.value = draw(st.integers(-(2**63), 2**63 - 1))
    if draw(st.booleans()):
        m.w_uint32.value = draw(st.integers(0, 2**32 - 1))
    if draw(st.booleans()):
        m.w_float.value = draw(_f32.filter(math.isfinite))
    if draw(st.booleans()):
        m.w_bytes.value = draw(st.binary(max_size=4))
    if draw(st.booleans()):
        m.st.update(draw(st.dictionaries(st.text(max_size=3), st.one_of(st.none(), st.booleans(), st.text(max_size=3),
                                                                        st.integers(-(2**40), 2**40).map(float)), max_size=3)))
    for _ in range(draw(st.integers(0, 2))):
        t = m.times.add()
        t.seconds = draw(_ts_seconds)
    return m


@FUZZ
@given(kinds_messages(), st.sampled_from(range(len(RESPONSES))))
def test_proto_to_json_to_proto_round_trip(message, which: int) -> None:
    body, content_type = RESPONSES[which].encode(message)
    assert content_type == "application/json"
    back = WHOLE.decode([], [], body, content_type)
    if back != message:  # -0.0 is printed and read back as the default 0
        assert back.SerializeToString(deterministic=True) == message.SerializeToString(deterministic=True) or _zero_sign_only(back, message)


def _zero_sign_only(a, b) -> bool:
    import copy

    def normalized(m):
        m = copy.deepcopy(m)
        for name in ("f_double", "f_float"):
            if getattr(m, name) == 0.0:
                setattr(m, name, 0.0)
        for i, r in enumerate(m.ratios):
            if r == 0.0:
                m.ratios[i] = 0.0
        return m.SerializeToString(deterministic=True)

    return normalized(a) == normalized(b)


@pytest.mark.xfail(strict=True, reason="protobuf json_format prints float32 max as 3.4028235e+38 and then refuses it as "
                   "'Float value too large' (protocolbuffers/protobuf#8336); the gateway inherits it")
def test_float32_max_round_trip() -> None:
    message = KT.Kinds(f_float=_FLT_MAX)
    body, _ = RESPONSES[0].encode(message)
    assert WHOLE.decode([], [], body, "application/json") == message
