"""OpenAPI path strings and path parameters from route templates, and where each
operation goes among the path items.

A variable is one path parameter named after its field (json names unless the
backend's `use_proto_names`). A variable spanning several segments
(``{name=shelves/*}``, ``**``) is still one parameter, as grpc-gateway does by
default: its schema carries the pattern as a regex and its description says
the value contains '/' that must be sent unescaped, and how the gateway
percent-decodes it under the route's `path_unescape` (transcoding/options.py).
With `expand` the pattern's literals go into the path instead
(``/v1/shelves/{shelf}/books/{book}``, grpc-gateway's
``expand_slashed_path_patterns``): every parameter is then one segment, which
generated clients percent-encode safely.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from transcoding.options import PathUnescape
from transcoding.template import PathTemplate, Segment

from .schemas import Schemas, message_type_of

__all__ = ["PathItems", "PathParam", "Paths", "field_chain"]


@dataclass
class PathParam:
    name: str  # as written in the OpenAPI path
    field_path: str  # dotted proto names of the field it fills
    natural: str  # the name it would have without renaming
    pattern: str  # the segments it stands for: "*", "**", "shelves/*"...
    schema: dict[str, Any]
    description: str
    extensions: dict[str, Any] = field(default_factory=dict)

    def as_parameter(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "in": "path", "required": True, "schema": self.schema}
        if self.description:
            out["description"] = self.description
        if self.name != self.natural or "x-edge-field" in self.extensions:
            out["x-edge-field"] = self.field_path
        for key, value in self.extensions.items():
            out.setdefault(key, value)
        return out


def _pattern_text(segments: Iterable[Segment]) -> str:
    return "/".join(s.value if s.kind == "literal" else "*" if s.kind == "single" else "**" for s in segments)


_REGEX_SPECIAL = re.compile(r"([.^$|?*+()\[\]{}\\/])")


def _pattern_regex(segments: list[Segment]) -> str:
    out = ""
    for i, s in enumerate(segments):
        if s.kind == "multi":
            out += ".*" if i == 0 else "(/.*)?"
            continue
        if i:
            out += "/"
        out += _REGEX_SPECIAL.sub(r"\\\1", s.value) if s.kind == "literal" else "[^/]+"
    return f"^{out}$"


def _singular(word: str) -> str:
    """`shelves` -> `shelf`, `books` -> `book`: a name for the segment after a collection literal."""
    lower = word.lower()
    if lower.endswith("ies") and len(word) > 3:
        return word[:-3] + "y"
    if lower.endswith("lves"):
        return word[:-3] + "f"
    if lower.endswith(("sses", "shes", "ches", "xes", "zes")):
        return word[:-2]
    if lower.endswith("s") and not lower.endswith(("ss", "us", "is")) and len(word) > 1:
        return word[:-1]
    return word


_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]")

# What a multi-segment variable's value holds under each `path_unescape` (transcoding/matcher.py
# decodes by `PathUnescape.kept_escapes`); one-segment variables are always fully decoded.
_DECODING = {
    PathUnescape.ALL_EXCEPT_RESERVED: (
        "escapes of the reserved characters `{kept}` reach the field still percent-encoded "
        "(`a%2Fb%3Ac` stays `a%2Fb%3Ac`; Envoy's default), every other escape is decoded."
    ),
    PathUnescape.ALL_EXCEPT_SLASH: (
        "an escaped '/' (`%2F`) reaches the field still percent-encoded, every other escape is decoded."
    ),
    PathUnescape.ALL_CHARACTERS: (
        "every escape is decoded, `%2F` into '/' (it still does not separate segments when the path is matched)."
    ),
    PathUnescape.LEGACY: (
        "the whole path is decoded before routing, so an encoded `%2F` separates segments like '/'; "
        "the field receives every escape decoded (grpc-gateway's default)."
    ),
}


def _decoding(mode: PathUnescape) -> str:
    """One sentence: how the gateway percent-decodes a multi-segment variable under `mode`."""
    return f"Percent-decoding (`path_unescape: {mode.value}`): " + _DECODING[mode].format(kept=mode.kept_escapes)


class Paths:
    """OpenAPI path strings and path parameters for the route templates."""

    def __init__(self, schemas: Schemas, expand: bool) -> None:
        self.schemas = schemas
        self.expand = expand

    def convert(
        self, template: PathTemplate, input_type: Descriptor, path_unescape: PathUnescape,
    ) -> tuple[str, list[PathParam]]:
        """The OpenAPI path of `template` and its parameters; `path_unescape` is the
        route's, which says how a multi-segment variable's value is decoded."""
        segments = list(template.segments)
        starts = {v.start: v for v in template.variables}
        parts: list[str] = []
        params: list[PathParam] = []
        used: set[str] = set()
        wildcards = 0
        i = 0
        while i < len(segments):
            variable = starts.get(i)
            if variable is None:
                segment = segments[i]
                i += 1
                if segment.kind == "literal":
                    parts.append(segment.value)
                    continue
                wildcards += 1
                name = self._unique(f"wildcard{wildcards}", used)
                multi = segment.kind == "multi"
                params.append(PathParam(
                    name, "", name, "**" if multi else "*", {"type": "string"},
                    "Any path segments, ignored by the gateway (may contain '/')." if multi
                    else "Any single path segment, ignored by the gateway.",
                ))
                parts.append("{" + name + "}")
                continue
            end = len(segments) if variable.end is None else variable.end
            pattern = segments[variable.start:end]
            i = end
            chain = field_chain(input_type, variable.field_path)
            field_path = ".".join(variable.field_path)
            natural = ".".join(self.schemas.json_name(f) for f in chain)
            leaf = chain[-1]
            comment = self.schemas.comments.get(leaf.full_name, "")
            multi = len(pattern) > 1 or pattern[0].kind == "multi"
            if not multi:
                name = self._unique(natural, used)
                schema = self.schemas.value(leaf)
                params.append(PathParam(name, field_path, natural, "*", schema, comment))
                parts.append("{" + name + "}")
            elif not self.expand:
                name = self._unique(natural, used)
                text = _pattern_text(pattern)
                note = (
                    f"A path matching `{text}`: the value contains '/', which must be sent as is, "
                    f"not percent-encoded. {_decoding(path_unescape)}"
                )
                schema = {"type": "string", "pattern": _pattern_regex(pattern)}
                params.append(PathParam(
                    name, field_path, natural, text, schema, "\n\n".join(p for p in (comment, note) if p),
                    {"x-edge-pattern": text},
                ))
                parts.append("{" + name + "}")
            else:
                self._expand(pattern, field_path, natural, comment, parts, params, used, path_unescape)
        path = "/" + "/".join(parts)
        if template.verb:
            path += ":" + template.verb
        return path, params

    def _expand(
        self, pattern: list[Segment], field_path: str, natural: str, comment: str,
        parts: list[str], params: list[PathParam], used: set[str], path_unescape: PathUnescape,
    ) -> None:
        """`{name=shelves/*/books/*}` -> `shelves/{shelf}/books/{book}`."""
        text = _pattern_text(pattern)
        spelled: list[str] = []
        new: list[PathParam] = []
        previous = ""
        for segment in pattern:
            if segment.kind == "literal":
                parts.append(segment.value)
                spelled.append(segment.value)
                previous = segment.value
                continue
            if segment.kind == "multi":
                base = natural.rsplit(".", 1)[-1]
            else:
                base = _singular(_NAME_CHARS.sub("_", previous)) if previous else f"{natural.rsplit('.', 1)[-1]}_part"
            name = self._unique(base, used)
            parts.append("{" + name + "}")
            spelled.append("{" + name + "}")
            multi = segment.kind == "multi"
            note = "The rest of the path (may contain '/', sent as is)." if multi else "One path segment."
            new.append(PathParam(
                name, field_path, natural, "**" if multi else "*", {"type": "string"}, note, {"x-edge-field": field_path}
            ))
            previous = ""
        whole = "/".join(spelled)
        for param in new:
            param.description = (
                f"{param.description} Part of `{natural}`, which the gateway sets to `{whole}` "
                f"(pattern `{text}`). {_decoding(path_unescape)}" + (f"\n\n{comment}" if comment else "")
            )
        params.extend(new)

    @staticmethod
    def _unique(name: str, used: set[str]) -> str:
        candidate, n = name, 1
        while candidate in used:
            n += 1
            candidate = f"{name}_{n}"
        used.add(candidate)
        return candidate



def field_chain(descriptor: Descriptor, names: Iterable[str]) -> list[FieldDescriptor]:
    """The fields a dotted path (as proto names) walks, from `descriptor` down."""
    chain: list[FieldDescriptor] = []
    current: Descriptor | None = descriptor
    for name in names:
        assert current is not None  # the route table only holds templates its codec accepted
        f = current.fields_by_name[name]
        chain.append(f)
        current = message_type_of(f)
    return chain


_PARAM_IN_PATH = re.compile(r"\{([^}]*)\}")


class PathItems:
    """The document's `paths`: which path string each operation goes under.

    OpenAPI forbids templated paths that differ only in parameter names, and
    one path item holds one operation per HTTP method."""

    def __init__(self) -> None:
        self.paths: dict[str, dict[str, Any]] = {}
        self._signatures: dict[str, list[str]] = {}  # path with variable patterns -> path strings

    def place(self, path: str, kind: str, params: list[PathParam]) -> str | None:
        """The path string this operation goes under.

        It joins a path item whose template has the same segments and
        variable patterns (renaming its parameters to that item's names), else
        the item at its own path string, else a path of its own whose first
        parameter gets a `_1`, `_2`... suffix: never two operations on one
        path and method.
        """
        signature = self._render(path, ["{" + p.pattern + "}" for p in params], braces=False)
        same = self._signatures.setdefault(signature, [])
        for existing in sorted(same, key=lambda p: p != path):
            if kind not in self.paths[existing]:
                for param, name in zip(params, _PARAM_IN_PATH.findall(existing)):
                    param.name = name
                return existing
        candidate, n = path, 0
        base = params[0].name if params else ""
        while candidate in self.paths and kind in self.paths[candidate]:
            if not params:
                return None
            n += 1
            candidate = self._render(path, [f"{base}_{n}"] + [p.name for p in params[1:]])
        if n:
            params[0].name = f"{base}_{n}"
        same.append(candidate)
        self.paths.setdefault(candidate, {})
        return candidate

    @staticmethod
    def _render(path: str, names: list[str], braces: bool = True) -> str:
        """`path` with its parameters, in order, replaced by `names`."""
        it = iter(names)
        return _PARAM_IN_PATH.sub(lambda _: ("{%s}" if braces else "%s") % next(it), path)
