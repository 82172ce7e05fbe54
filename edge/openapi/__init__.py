"""OpenAPI 3.1 for the routes the gateway serves, built from the live route table.

The package builds the document (`build_openapi`); serving it (`/openapi.json`,
`/docs`, `edge openapi`) is edge/apidocs.py's. Modules: comments.py
(`source_code_info`), schemas.py (component schemas per print variant),
paths.py (path strings, path parameters, path items), document.py
(operations and the document).

The document describes what the gateway does, not what the protos might
mean: it is built from the same `RouteTable` requests are matched against,
so a route left out by a conflict is absent here too, and a reload that adds
a method adds its operation (callers cache per table generation).

Mapping choices (grpc-gateway's protoc-gen-openapiv2 is the reference):

* Paths: a variable is one path parameter named after its field (json names
  unless the backend's `use_proto_names`). A variable spanning several segments
  (``{name=shelves/*}``, ``**``) is still one parameter, as grpc-gateway does
  by default: its schema carries the pattern as a regex and its description
  says the value contains '/' that must be sent unescaped and how the route's
  `path_unescape` decodes its percent-escapes (under the default, Envoy's,
  reserved characters such as ``%2F`` stay encoded in the field). Templates that
  would then share a path and method (``/v1/{name=shelves/*}`` and
  ``/v1/{name=shelves/*/books/*}`` both read ``/v1/{name}``) get their first
  parameter renamed ``name_1``, ``name_2``... (grpc-gateway's scheme), with
  ``x-edge-field`` naming the real field. `expand_path_patterns=True` instead
  writes the pattern's literals into the path
  (``/v1/shelves/{shelf}/books/{book}``, grpc-gateway's
  ``expand_slashed_path_patterns``): every parameter is then one segment, which
  generated clients percent-encode safely.
* An operation whose template has the same segments and variable patterns as
  an existing path item's (``/v1/users/{user_id}``, ``/v1/users/{user.user_id}``)
  joins it when its method slot is free, its parameters renamed positionally
  (``x-edge-field`` keeps the field), since OpenAPI forbids templated paths
  that differ only in parameter names. Each operation names its gRPC method
  and original template in ``x-edge-grpc-method`` / ``x-edge-template``.
* Custom verbs stay in the path (``/v1/{name}:move``). Custom HTTP methods
  OpenAPI 3.1 has no slot for (anything but head/options/trace) are listed in
  the top-level ``x-edge-skipped``.
* Query parameters: the list the route's own query rules give
  (`RouteQuery.parameters` in transcoding/query.py, the object that reads them
  per request): every field the path and body leave free, flattened with
  dots, message fields recursing until a type repeats on the way down; map
  fields as deepObject (``labels[key]=value``); the names the options always
  ignore, as such. A route whose rules drop the query lists none.
* Schemas are proto3 JSON as the route's backend prints it (`route.options`,
  per backend): field names lowerCamelCase or proto names (`use_proto_names`),
  enums as value names or integers (`enums_as_ints`), unset message fields
  nullable where they print as null (`unset_messages_as_null`); 64-bit
  integers are strings, well-known types take their JSON forms, maps are
  objects. Messages are components named by full proto name, so recursion is
  a `$ref`; a backend that prints differently from the gateway-wide options
  gets its own components, suffixed (``pkg.Book-proto_names``), its own
  parameter names, and a sentence in its responses' description. Floats
  are plain numbers, as grpc-gateway and gnostic write them (generated
  clients choke on number-or-string unions); descriptions say NaN and
  Infinity arrive as strings.
* Comments come from `source_code_info`, which only descriptor-set files
  built with ``--include_source_info`` carry (grpcio's server reflection
  serves descriptors without it): pass the loaded files as `files`.
"""
from __future__ import annotations

from .document import OPENAPI_VERSION, OPERATION_KINDS, SecurityInfo, build_openapi

__all__ = ["OPENAPI_VERSION", "OPERATION_KINDS", "SecurityInfo", "build_openapi"]
