"""Parser for ``google.api.http`` path templates (google/api/http.proto, AIP-127).

Grammar::

    Template  = "/" Segments [ Verb ] ;
    Segments  = Segment { "/" Segment } ;
    Segment   = "*" | "**" | LITERAL | Variable ;
    Variable  = "{" FieldPath [ "=" Segments ] "}" ;
    FieldPath = IDENT { "." IDENT } ;
    Verb      = ":" LITERAL ;

Choices where the spec is silent (documented so routes and ``edge check`` agree):

* ``"/"`` alone is accepted as the root template with no segments, as Envoy's
  http_template.cc special-cases it; every other empty segment (``//``, a
  trailing ``/``, ``{x=}``) is an error.
* LITERAL characters are RFC 3986 unreserved, pct-encoded and sub-delims, except
  ``*`` which is only meaningful as a whole-segment wildcard. ``:`` is never part
  of a literal: the verb starts at the last ``:`` that follows the last ``/``
  outside ``{...}`` (``/v1/{name=projects/*}:cancel``).
* ``**`` matches any number of segments and may be followed by more segments
  (``/v1/{name=files/**}/contents``, ``/{x=**}/tail:verb``), as both Envoy and
  grpc-gateway accept; a template holds at most one ``**`` (both anchors refuse
  two: with one, the segments after it are a fixed-length tail, so where the
  ``**`` ends is decided by the path's length, never by a search). Envoy allows
  only literals after it, grpc-gateway also ``*`` and variables; edge accepts
  the latter too and ``edge check`` says when the Envoy profile is chosen.
  How many segments ``**`` may match is the matcher's business
  (`TranscodingOptions.empty_double_wildcard`).
* Errors report the 0-based offset where the problem is; for an unterminated
  variable that is the end of the text, where ``}`` was expected.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Literal

__all__ = ["PathTemplate", "Segment", "TemplateError", "Variable", "parse_template"]

_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_LITERAL_CHARS = _UNRESERVED | frozenset("!$&'()+,;=%")  # sub-delims minus '*', plus '%'
_HEX = frozenset(string.hexdigits)
_IDENT_START = frozenset(string.ascii_letters + "_")
_IDENT_CHARS = _IDENT_START | frozenset(string.digits)


class TemplateError(ValueError):
    """A path template that does not follow the grammar, with the offending offset."""

    def __init__(self, message: str, position: int, template: str) -> None:
        self.message = message
        self.position = position
        self.template = template
        super().__init__(f"invalid path template {template!r}: {message} at position {position}")


@dataclass(frozen=True)
class Segment:
    """One path segment: a literal (``value`` as written), ``*`` (single) or ``**`` (multi)."""

    kind: Literal["literal", "single", "multi"]
    value: str = ""


@dataclass(frozen=True)
class Variable:
    """A field bound to the template's segments ``[start, end)``.

    With a ``**`` inside, the request segments it binds are found from both ends
    of the path (the segments after the ``**`` are a fixed-length tail)."""

    field_path: tuple[str, ...]
    start: int
    end: int


@dataclass(frozen=True)
class PathTemplate:
    text: str
    segments: tuple[Segment, ...]
    variables: tuple[Variable, ...]
    verb: str | None

    def field_paths(self) -> list[str]:
        return [".".join(v.field_path) for v in self.variables]

    @property
    def double_wildcard(self) -> int | None:
        """The index of the ``**`` segment, if there is one (there is at most one)."""
        for i, segment in enumerate(self.segments):
            if segment.kind == "multi":
                return i
        return None

    def __str__(self) -> str:
        return self.text


_SINGLE = Segment("single")
_MULTI = Segment("multi")


def _is_hex2(digits: str) -> bool:
    return len(digits) == 2 and digits[0] in _HEX and digits[1] in _HEX


def parse_template(text: str) -> PathTemplate:
    """Parse and validate ``text``; raises :class:`TemplateError`."""
    return _Parser(text).parse()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.end = len(text)  # end of the Segments part (a verb, if any, starts after it)
        self.segments: list[Segment] = []
        self.seg_pos: list[int] = []  # offset of each segment, for error reports
        self.variables: list[Variable] = []
        self.var_pos: list[int] = []

    def fail(self, message: str, position: int | None = None) -> TemplateError:
        return TemplateError(message, self.pos if position is None else position, self.text)

    def parse(self) -> PathTemplate:
        text = self.text
        if not text.startswith("/"):
            raise self.fail("must start with '/'", 0)
        if text == "/":
            return PathTemplate(text, (), (), None)
        verb = self._split_verb()
        self.pos = 1
        self._segments(in_variable=False)
        if self.pos < self.end:
            char = text[self.pos]
            if char == "}":
                raise self.fail("unexpected '}' outside a variable")
            raise self.fail(f"expected '/' but found {char!r}")
        self._validate()
        return PathTemplate(text, tuple(self.segments), tuple(self.variables), verb)

    def _split_verb(self) -> str | None:
        """Find the verb: the last ':' after the last '/' that is outside braces."""
        depth, last_slash, last_colon = 0, -1, -1
        for i, char in enumerate(self.text):
            if char == "{":
                depth += 1
            elif char == "}":
                depth = max(0, depth - 1)
            elif depth == 0 and char == "/":
                last_slash = i
            elif depth == 0 and char == ":":
                last_colon = i
        if last_colon < last_slash:
            return None
        self.end = last_colon
        verb = self.text[last_colon + 1 :]
        if not verb:
            raise self.fail("empty verb after ':'", last_colon + 1)
        self._check_literal(verb, last_colon + 1, what="verb")
        return verb

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < self.end else ""

    def _segments(self, in_variable: bool) -> None:
        self._segment(in_variable)
        while self._peek() == "/":
            self.pos += 1
            self._segment(in_variable)

    def _segment(self, in_variable: bool) -> None:
        start, char = self.pos, self._peek()
        if char in ("", "/", "}"):
            raise self.fail("empty segment")
        if char == "{":
            if in_variable:
                raise self.fail("nested variables are not allowed")
            self._variable()
            return
        if char == "*":
            self.pos += 2 if self.text.startswith("**", start) and start + 1 < self.end else 1
            if self._peek() not in ("", "/", "}"):
                raise self.fail("'*' and '**' must be a whole segment")
            self.segments.append(_MULTI if self.pos - start == 2 else _SINGLE)
            self.seg_pos.append(start)
            return
        while self.pos < self.end and self.text[self.pos] in _LITERAL_CHARS:
            self.pos += 1
        if self._peek() not in ("", "/", "}"):
            raise self.fail(f"illegal character {self._peek()!r} in literal")
        literal = self.text[start : self.pos]
        self._check_literal(literal, start, what="literal")
        self.segments.append(Segment("literal", literal))
        self.seg_pos.append(start)

    def _check_literal(self, literal: str, offset: int, what: str) -> None:
        for i, char in enumerate(literal):
            if char not in _LITERAL_CHARS:
                raise self.fail(f"illegal character {char!r} in {what}", offset + i)
            if char == "%" and not _is_hex2(literal[i + 1 : i + 3]):
                raise self.fail(f"malformed percent-encoding in {what}", offset + i)

    def _variable(self) -> None:
        open_pos = self.pos
        self.pos += 1  # '{'
        path_pos = self.pos
        field_path = self._field_path()
        start = len(self.segments)
        if self._peek() == "=":
            self.pos += 1
            if self._peek() in ("", "}"):
                raise self.fail("empty pattern after '=' in variable")
            self._segments(in_variable=True)
        else:
            self.segments.append(_SINGLE)  # {x} is {x=*}
            self.seg_pos.append(open_pos)
        if self._peek() != "}":
            if self.pos >= self.end:
                raise self.fail("unterminated variable")
            raise self.fail(f"expected '}}' but found {self._peek()!r}")
        self.pos += 1
        self.variables.append(Variable(field_path, start, len(self.segments)))
        self.var_pos.append(path_pos)

    def _field_path(self) -> tuple[str, ...]:
        names = [self._ident()]
        while self._peek() == ".":
            self.pos += 1
            names.append(self._ident())
        char = self._peek()
        if char not in ("", "=", "}"):
            raise self.fail(f"illegal character {char!r} in field path")
        return tuple(names)

    def _ident(self) -> str:
        start = self.pos
        if self._peek() not in _IDENT_START:
            raise self.fail("expected a field name ([A-Za-z_][A-Za-z0-9_]*)")
        self.pos += 1
        while self.pos < self.end and self.text[self.pos] in _IDENT_CHARS:
            self.pos += 1
        return self.text[start : self.pos]

    def _validate(self) -> None:
        multi = [i for i, segment in enumerate(self.segments) if segment.kind == "multi"]
        if len(multi) > 1:
            raise self.fail("a template may hold only one '**'", self.seg_pos[multi[1]])
        seen: set[tuple[str, ...]] = set()
        for variable, position in zip(self.variables, self.var_pos):
            if variable.field_path in seen:
                raise self.fail(f"duplicate field path {'.'.join(variable.field_path)!r}", position)
            seen.add(variable.field_path)
