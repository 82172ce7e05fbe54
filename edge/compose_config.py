"""The `compose` section: HTTP routes whose reply is assembled from several RPCs.

Kept apart from edge/compose.py because the config module must not import the
pipeline (which imports the config). What can be checked without descriptors
is checked here, at load: the route, part ids and keys, references (syntax,
known parts, path variables) and the dependency graph. What needs the
descriptors (methods, request fields, fields of earlier replies) is checked
by `edge check` and when the route table is built (edge/compose.py).

    compose:
      - route: GET /v1/screens/shelf/{shelf}
        timeout: 5s                          # the whole composition
        parts:
          - id: shelf
            method: edgedemo.library.v1.LibraryService/GetShelf
            request: {name: "shelves/{{path.shelf}}"}
            timeout: 2s                      # this part's deadline
          - id: books
            method: edgedemo.library.v1.LibraryService/ListBooks
            request: {parent: "{{shelf.body.name}}", pageSize: "{{query.pageSize}}"}
            fields: books(name,title)        # only this much of its reply
          - id: me
            method: edgedemo.users.v1.UserService/GetMe
            on_error: include                # its error under its key, and the rest still answers 200
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from transcoding import errors
from transcoding.template import TemplateError, parse_template

from .graph import GraphError, check_graph
from .references import MAX_DEPTH, Syntax, TooDeep, body_references, references
from .units import Duration

__all__ = ["ComposePart", "ComposeRoute", "COMPOSE_SYNTAX", "SOURCES"]

SOURCES = frozenset({"path", "query", "claims"})
COMPOSE_SYNTAX = Syntax(
    SOURCES,
    "write {{<part>.body.<field>}}, {{path.<variable>}}, {{query.<name>}} or {{claims.<claim>}}",
)
_ID = r"^[A-Za-z0-9_-]{1,64}$"
_METHOD = r"^/?[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+/[A-Za-z_][A-Za-z0-9_]*$"
_HEADER = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$"


class ComposePart(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=_ID, description="names the part in references and (by default) its key in the reply")
    method: str = Field(pattern=_METHOD, description="the gRPC method, pkg.Service/Method (unary)")
    request: dict[str, Any] = Field(
        default_factory=dict,
        description="the request message as proto3 JSON (either spelling); strings may hold {{...}} references",
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="request headers for this part alone (its route's forward_headers pass them)"
    )
    timeout: Duration | None = Field(None, gt=0, description="this part's deadline; default: its backend's timeout")
    on_error: Literal["fail", "include"] = Field(
        "fail", description="fail: the part's error is the answer; include: its error goes under its key, 200"
    )
    output: bool = Field(True, description="false: the part only feeds others and is left out of the reply")
    key: str | None = Field(None, pattern=_ID, description="its key in the reply (default: its id)")
    fields: str | None = Field(None, description="only these fields of its reply (the `fields` syntax)")
    depends_on: list[str] = Field(default_factory=list, description="parts to wait for, beyond those it references")

    @field_validator("id")
    @classmethod
    def _not_a_source(cls, value: str) -> str:
        if value in SOURCES:
            raise ValueError(f"part id {value!r} is reserved (references read {{{{{value}.<name>}}}})")
        return value

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        return value.lstrip("/")

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        import re

        out = {}
        for name, text in value.items():
            if not re.match(_HEADER, name) or any(c in text for c in "\r\n\0"):
                raise ValueError(f"header {name!r}: a token name and a single-line value, please")
            out[name.lower()] = text
        return out

    @property
    def output_key(self) -> str:
        return self.key or self.id


class ComposeRoute(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    route: str = Field(description="'VERB /template', e.g. 'GET /v1/screens/shelf/{shelf}'; variables are names")
    summary: str | None = Field(None, description="for the OpenAPI document")
    timeout: Duration = Field(10.0, gt=0, description="the whole composition's deadline (a client's may shorten it)")
    parts: list[ComposePart] = Field(min_length=1, max_length=32)

    _depends: dict[str, tuple[str, ...]] = PrivateAttr(default_factory=dict)
    _queries: tuple[str, ...] = PrivateAttr(())

    @field_validator("route")
    @classmethod
    def _route(cls, value: str) -> str:
        verb, _, path = value.strip().partition(" ")
        path = path.strip()
        if not verb.isalpha() or not path.startswith("/"):
            raise ValueError(f"route {value!r} must read 'VERB /template', e.g. 'GET /v1/screens/{{shelf}}'")
        try:
            template = parse_template(path)
        except TemplateError as exc:
            raise ValueError(f"route {value!r}: {exc}") from None
        for variable in template.variables:
            if len(variable.field_path) != 1:
                raise ValueError(f"route {value!r}: a variable is a name, not a field path ({'.'.join(variable.field_path)})")
        return f"{verb.upper()} {path}"

    @property
    def http_method(self) -> str:
        return self.route.partition(" ")[0]

    @property
    def template(self) -> str:
        return self.route.partition(" ")[2]

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(v.field_path[0] for v in parse_template(self.template).variables)

    def depends(self, part_id: str) -> tuple[str, ...]:
        """What a part waits for: its `depends_on` and the parts its references read."""
        return self._depends[part_id]

    @property
    def query_names(self) -> tuple[str, ...]:
        """The query parameters the parts read (`{{query.<name>}}`), in first-use order."""
        return self._queries

    @model_validator(mode="after")
    def _graph(self) -> "ComposeRoute":
        ids = [p.id for p in self.parts]
        known = frozenset(ids)
        variables = set(self.variables)
        queries: dict[str, None] = {}
        for part in self.parts:
            where = f"part {part.id!r}"
            try:
                found = body_references(part.request, f"{where} request", COMPOSE_SYNTAX, known)
                for value in part.headers.values():
                    found += references(value, f"{where} headers", COMPOSE_SYNTAX, known)
            except errors.BadRequest as exc:
                raise ValueError(exc.message) from None
            except TooDeep:
                raise ValueError(f"{where}: request is nested more than {MAX_DEPTH} levels deep") from None
            implied = []
            for ref in found:
                if ref.source == "path" and (len(ref.path) != 1 or ref.path[0] not in variables):
                    raise ValueError(f"{where}: {ref.text} names no variable of {self.template} "
                                     f"(its variables: {', '.join(sorted(variables)) or 'none'})")
                if ref.source == "query":
                    if len(ref.path) != 1:
                        raise ValueError(f"{where}: {ref.text}: a query parameter is one name")
                    queries.setdefault(ref.path[0])
                if ref.source not in SOURCES:
                    if ref.source not in known:
                        raise ValueError(f"{where}: {ref.text} names no part (parts: {', '.join(ids)})")
                    implied.append(ref.source)
            self._depends[part.id] = tuple(dict.fromkeys([*part.depends_on, *implied]))
        try:
            check_graph(ids, self._depends, what="part")
        except GraphError as exc:
            raise ValueError(str(exc)) from None
        keys = [p.output_key for p in self.parts if p.output]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise ValueError(f"two parts answer under the key(s) {', '.join(twice)}")
        if "fields" in queries:
            raise ValueError("{{query.fields}}: `fields` is the gateway's parameter on composed routes")
        self._queries = tuple(queries)
        return self
