"""Partial responses: Google's `fields` system parameter, compiled once against a
message type and applied to the JSON a reply prints.

Pure logic over descriptors and JSON values; the service decides where a mask
comes from and when it applies (edge/partial.py).

Syntax, as Google's API front ends read it (and the paths of a FieldMask):

    fields    := selection ("," selection)*
    selection := path [ "(" fields ")" ]
    path      := name (("/" | ".") name)*
    name      := a field (json or proto spelling), a map key, or "*"

``books(name,title),nextPageToken`` means ``books/name,books/title,nextPageToken``;
parentheses nest (``books(author,tags),shelf(theme)``); whitespace around names
is ignored; an empty value selects everything.

Meaning:

* a message field selected bare keeps its whole value; a sub-selection keeps
  only those fields of it; on a repeated message field it applies to every
  element; two selections of one field add up (``books(name),books(title)``),
  and a bare one wins over a sub-selection (``books,books(name)`` is ``books``);
* ``*`` keeps every field of a message whole; listed fields still take their
  sub-selections (``*,shelf/name`` keeps every field but only the name of
  ``shelf``); in a message ``*`` itself takes no sub-selection;
* a map field (and a ``google.protobuf.Struct``) prints as a JSON object keyed
  by its keys, so after it come keys, not fields (``labels/env``,
  ``labels(env,team)``), and ``*`` stands for every key
  (``innerById/*/name``: the name of every entry); keys are data, never
  refused; what follows a key is checked against the map's value type;
* scalars, enums and well-known types with a JSON form of their own
  (Timestamp, Duration, wrappers...) take no sub-selection; under ``Value``,
  ``ListValue`` and ``Any`` (arbitrary JSON) names are taken as keys;
* a name that is no field of its message is an error naming it (dotted, as
  written), as is a syntax error (with its position).

A `Selection` also gives the FieldMask paths (proto names) it stands for,
relative to the same root, for a request's ``read_mask``: a map key or ``*``
becomes the field or message it is under, since a FieldMask cannot name them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from google.protobuf.descriptor import Descriptor, FieldDescriptor

__all__ = ["FieldsError", "Level", "Selection", "apply", "compile_fields", "parse_fields"]

_T = FieldDescriptor
MAX_LENGTH = 4096  # far longer than a real mask; a bound on what one request can make the parser do
MAX_DEPTH = 32  # nesting of parentheses and path segments together
_STRUCT = "google.protobuf.Struct"
_FREE_FORM = frozenset({"google.protobuf.Value", "google.protobuf.ListValue", "google.protobuf.Any"})

Tree = dict[str, "Tree | None"]  # parsed, not yet checked: name -> what is under it (None: the whole value)


class FieldsError(ValueError):
    """A `fields` value that cannot be used; `path` is the offending path as written, if any."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


# ------------------------------------------------------------------------- parsing

def parse_fields(text: str) -> Tree:
    """The value as a tree of names, merged (see the module docstring); FieldsError on bad syntax."""
    if len(text) > MAX_LENGTH:
        raise FieldsError(f"fields is {len(text)} characters long; at most {MAX_LENGTH} are accepted")
    parser = _Parser(text)
    tree = parser.selections(0)
    if parser.pos != len(text):
        raise FieldsError(f"fields: unexpected {text[parser.pos]!r} at position {parser.pos + 1}")
    return tree


class _Parser:
    _SPECIAL = frozenset("(),/.")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def _skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1

    def _name(self) -> str:
        self._skip_space()
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in self._SPECIAL:
            self.pos += 1
        name = self.text[start:self.pos].strip()
        if not name:
            where = f"at position {start + 1}" if start < len(self.text) else "at the end"
            raise FieldsError(f"fields: a field name is missing {where}")
        self._skip_space()
        return name

    def selections(self, depth: int) -> Tree:
        tree: Tree = {}
        while True:
            path, sub = self._selection(depth)
            _merge(tree, path, sub)
            if self.pos < len(self.text) and self.text[self.pos] == ",":
                self.pos += 1
                continue
            return tree

    def _selection(self, depth: int) -> tuple[list[str], Tree | None]:
        path = [self._name()]
        while self.pos < len(self.text) and self.text[self.pos] in "/.":
            self.pos += 1
            path.append(self._name())
        if depth + len(path) > MAX_DEPTH:
            raise FieldsError(f"fields is nested more than {MAX_DEPTH} levels deep")
        if self.pos < len(self.text) and self.text[self.pos] == "(":
            open_at = self.pos
            self.pos += 1
            sub = self.selections(depth + len(path))
            if self.pos >= len(self.text) or self.text[self.pos] != ")":
                raise FieldsError(f"fields: the parenthesis at position {open_at + 1} is not closed")
            self.pos += 1
            self._skip_space()
            return path, sub
        return path, None


def _merge(tree: Tree, path: list[str], sub: Tree | None) -> None:
    node = tree
    for i, name in enumerate(path):
        last = i == len(path) - 1
        if name in node and node[name] is None:
            return  # already the whole value
        if last:
            if sub is None:
                node[name] = None
            else:
                existing = node.setdefault(name, {})
                assert existing is not None
                for key, value in sub.items():
                    _merge(existing, [key], value)
            return
        child = node.setdefault(name, {})
        assert child is not None
        node = child


# ------------------------------------------------------------------------- levels

@dataclass(frozen=True)
class Level:
    """What the names at one level of a reply are: the fields of a message, the keys
    of a map (each holding `child`), free-form JSON, or nothing (a leaf). `keyed` is
    for composed replies: fixed keys, each with its own level."""

    kind: str  # "message" | "map" | "free" | "leaf" | "keyed"
    descriptor: Descriptor | None = None
    child: "Level | None" = None
    map_field: str = ""  # maps: the field's proto name (where a FieldMask path stops)
    what: str = ""  # for errors
    keyed: Mapping[str, "Level"] | None = None

    @classmethod
    def of_message(cls, descriptor: Descriptor) -> "Level":
        name = descriptor.full_name
        if name == _STRUCT:
            return cls("map", child=cls("free"), what=name)
        if name in _FREE_FORM:
            return cls("free", what=name)
        if name.startswith("google.protobuf."):
            return cls("leaf", what=f"a {name}, which prints as a JSON value of its own")
        return cls("message", descriptor, what=name)

    @classmethod
    def of_field(cls, f: FieldDescriptor) -> "Level":
        message_type = f.message_type if f.type in (_T.TYPE_MESSAGE, _T.TYPE_GROUP) else None
        if message_type is not None and f.is_repeated and message_type.GetOptions().map_entry:
            value = message_type.fields_by_name["value"]
            return cls("map", child=cls.of_field(value), map_field=f.name, what=f"map field {f.name!r}")
        if message_type is not None:
            return cls.of_message(message_type)
        kind = "an enum" if f.type == _T.TYPE_ENUM else "a repeated scalar" if f.is_repeated else "a scalar"
        return cls("leaf", what=f"{f.name!r}, {kind} field")

    @classmethod
    def of_keys(cls, levels: Mapping[str, "Level"], what: str = "the composed reply") -> "Level":
        return cls("keyed", keyed=dict(levels), what=what)


# ------------------------------------------------------------------------- selections

@dataclass(frozen=True, slots=True)
class Selection:
    """What to keep of one JSON object: `keys` (printed key -> its selection, None for
    the whole value) and, with `star`, every other key, through `star_sub`."""

    keys: Mapping[str, "Selection | None"]
    star: bool = False
    star_sub: "Selection | None" = None
    paths: tuple[str, ...] = ()  # FieldMask paths (proto names) from this level down

    def __bool__(self) -> bool:
        return True


def compile_fields(text: str, root: Level, *, use_proto_names: bool = False) -> Selection | None:
    """The selection `text` makes under `root`; None when it selects everything.
    FieldsError names the first problem. Build once per distinct value, not per request."""
    if not text.strip():
        return None
    tree = parse_fields(text)
    if tree == {"*": None}:
        return None
    return _Compiler(use_proto_names).level(tree, root, "")


class _Compiler:
    def __init__(self, use_proto_names: bool) -> None:
        self.use_proto_names = use_proto_names

    def level(self, tree: Tree, level: Level, where: str) -> Selection:
        if level.kind == "message":
            return self._message(tree, level, where)
        if level.kind == "keyed":
            return self._keyed(tree, level, where)
        if level.kind in ("map", "free"):
            return self._keys(tree, level, where)
        name = next(iter(tree))
        raise FieldsError(
            f"fields: {_join(where, name)!r} selects inside {where!r}, which is {level.what}: it has no fields to select",
            _join(where, name),
        )

    def _message(self, tree: Tree, level: Level, where: str) -> Selection:
        descriptor = level.descriptor
        assert descriptor is not None
        star = False
        # One entry per field, whichever spelling named it (`pageSize` and `page_size` add up).
        chosen: dict[str, tuple[FieldDescriptor, str]] = {}
        merged: Tree = {}
        for name, sub in tree.items():
            written = _join(where, name)
            if name == "*":
                if sub is not None:
                    raise FieldsError(f"fields: {written!r}: '*' keeps every field whole and takes no sub-selection", written)
                star = True
                continue
            f = _field(descriptor, name)
            if f is None:
                raise FieldsError(f"fields: {written!r} names no field of {descriptor.full_name}", written)
            chosen.setdefault(f.name, (f, written))
            _merge(merged, [f.name], sub)
        keys: dict[str, Selection | None] = {}
        paths: list[str] = []
        for proto_name, sub in merged.items():
            f, written = chosen[proto_name]
            key = f.name if self.use_proto_names else f.json_name
            if sub is None:
                keys[key] = None
                paths.append(f.name)
                continue
            child = self.level(sub, Level.of_field(f), written)
            keys[key] = child
            paths.extend(f"{f.name}.{p}" if p else f.name for p in child.paths or ("",))
        if star:
            paths = []  # the whole message: its parent's path
        return Selection(keys, star, None, tuple(_collapse(paths)))

    def _keys(self, tree: Tree, level: Level, where: str) -> Selection:
        keys: dict[str, Selection | None] = {}
        star, star_sub = False, None
        child = level.child or Level("free")
        for name, sub in tree.items():
            written = _join(where, name)
            selection = None if sub is None else self.level(sub, child, written)
            if name == "*":
                star, star_sub = True, selection
            else:
                keys[name] = selection
        return Selection(keys, star, star_sub, ())  # a FieldMask cannot name keys: the map, whole

    def _keyed(self, tree: Tree, level: Level, where: str) -> Selection:
        assert level.keyed is not None
        keys: dict[str, Selection | None] = {}
        star = False
        for name, sub in tree.items():
            written = _join(where, name)
            if name == "*":
                if sub is not None:
                    raise FieldsError(f"fields: {written!r}: '*' keeps every key whole and takes no sub-selection", written)
                star = True
                continue
            child = level.keyed.get(name)
            if child is None:
                known = ", ".join(sorted(level.keyed))
                raise FieldsError(f"fields: {written!r} names no key of {level.what} (its keys: {known})", written)
            keys[name] = None if sub is None else self.level(sub, child, written)
        return Selection(keys, star, None, ())


def _field(descriptor: Descriptor, name: str) -> FieldDescriptor | None:
    f = descriptor.fields_by_name.get(name)
    if f is not None:
        return f
    for candidate in descriptor.fields:
        if candidate.json_name == name:
            return candidate
    return None


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _collapse(paths: list[str]) -> list[str]:
    """Sorted, without duplicates or paths under another one (`a` covers `a.b`)."""
    out: list[str] = []
    for path in sorted(set(paths)):
        if out and (path == out[-1] or path.startswith(out[-1] + ".")):
            continue
        out.append(path)
    return out


# ------------------------------------------------------------------------- applying

def apply(selection: Selection | None, value: Any) -> Any:
    """`value` (a reply as JSON) with only what `selection` keeps; lists are trimmed
    element by element, anything that is not an object is kept as it is."""
    if selection is None:
        return value
    if type(value) is list:
        return [apply(selection, item) for item in value]
    if type(value) is not dict:
        return value
    keys = selection.keys
    out = {}
    if selection.star:
        star_sub = selection.star_sub
        for key, item in value.items():
            sub = keys[key] if key in keys else star_sub
            out[key] = item if sub is None else apply(sub, item)
        return out
    for key, item in value.items():
        if key in keys:
            sub = keys[key]
            out[key] = item if sub is None else apply(sub, item)
    return out
