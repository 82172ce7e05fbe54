"""The OpenAPI document, from real descriptor sets (and real reflection), checked
against the OpenAPI 3.1 schema by openapi-spec-validator, against the route
table it describes, and against the query mapper that serves its parameters."""
from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
import orjson
import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from edge.backends import BackendRegistry
from edge.config import GatewayConfig
from edge.apidocs import OpenApiCache, docs_html, registry_files
from edge.openapi import SecurityInfo, build_openapi
from transcoding.descriptors import (
    LoadedDescriptors,
    load_from_file,
    load_from_reflection,
)
from transcoding.query import PathError
from transcoding.options import TranscodingOptions, profile
from transcoding.routes import BackendSource, RouteTable

ROOT = Path(__file__).resolve().parent.parent
DEMO_SET = ROOT / "protos" / "edgedemo" / "descriptors.binpb"
TREES_SET = ROOT / "protos" / "edgeopenapi" / "descriptors.binpb"
PATHS_SET = ROOT / "protos" / "compatpaths" / "descriptors.binpb"
SCHEMAS = "#/components/schemas/"


def _table(*sets: Path, options: TranscodingOptions | None = None) -> tuple[RouteTable, list[LoadedDescriptors]]:
    loaded = [load_from_file(path) for path in sets]
    # Never called: building a table needs a channel, not a reachable backend. grpc.aio
    # binds a channel to the current loop; an earlier asyncio.run() may have left none.
    channel = _loop_bound(lambda: grpc.aio.insecure_channel("127.0.0.1:1"))
    options = options or TranscodingOptions()
    sources = [BackendSource(f"b{i}", d, channel, options) for i, d in enumerate(loaded)]
    table, problems = RouteTable.build(sources, options)
    assert problems == []
    return table, loaded


def _loop_bound(make):
    try:
        asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())
    return make()


def _files(loaded: list[LoadedDescriptors]) -> list:
    return [f for d in loaded for f in d.files]


def _valid(document: dict[str, Any]) -> dict[str, Any]:
    errors = [e.message for e in OpenAPIV31SpecValidator(document).iter_errors()]
    assert errors == []
    return document


def _operations(document: dict[str, Any]) -> dict[str, tuple[str, str, dict]]:
    """operationId -> (HTTP method, path, operation)."""
    out = {}
    for path, item in document["paths"].items():
        for kind, operation in item.items():
            assert operation["operationId"] not in out
            out[operation["operationId"]] = (kind.upper(), path, operation)
    return out


def _params(operation: dict[str, Any], where: str) -> dict[str, dict]:
    return {p["name"]: p for p in operation.get("parameters", []) if p["in"] == where}


@pytest.fixture(scope="module")
def demo() -> tuple[RouteTable, dict[str, Any]]:
    table, loaded = _table(DEMO_SET)
    return table, _valid(build_openapi(table, files=_files(loaded)))


@pytest.fixture(scope="module")
def trees() -> tuple[RouteTable, dict[str, Any]]:
    table, loaded = _table(TREES_SET)
    return table, _valid(build_openapi(table, files=_files(loaded)))


# Every binding of every demo method: operationId -> (method, OpenAPI path).
DEMO_OPERATIONS = {
    "LibraryService_ListShelves": ("GET", "/v1/shelves"),
    "LibraryService_ListShelves_1": ("GET", "/v1/shelves:list"),
    "LibraryService_GetShelf": ("GET", "/v1/{name}"),
    "LibraryService_CheckShelf": ("HEAD", "/v1/{name}"),
    "LibraryService_CreateShelf": ("POST", "/v1/shelves"),
    "LibraryService_DeleteShelf": ("DELETE", "/v1/{name}"),
    "LibraryService_ArchiveShelf": ("POST", "/edgedemo.library.v1.LibraryService/ArchiveShelf"),
    "LibraryService_ListBooks": ("GET", "/v1/{parent}/books"),
    # /v1/{name=shelves/*/books/*} reads /v1/{name} too: GetShelf has that
    # path and method, so GetBook's parameter is renamed apart.
    "LibraryService_GetBook": ("GET", "/v1/{name_1}"),
    "LibraryService_GetBook_1": ("GET", "/v1/books/{bookId}"),
    "LibraryService_CreateBook": ("POST", "/v1/{parent}/books"),
    "LibraryService_UpdateBook": ("PATCH", "/v1/{name_1}"),
    "LibraryService_SearchBooks": ("GET", "/v1/books:search"),
    "LibraryService_MoveBook": ("POST", "/v1/{name}:move"),
    "LibraryService_StreamBooks": ("GET", "/v1/{parent}/books:stream"),
    "LibraryService_ImportBooks": ("POST", "/v1/{parent}/books:import"),
    "LibraryService_GetBookCover": ("GET", "/v1/{name}/cover"),
    "UserService_GetUser": ("GET", "/v1/users/{userId}"),
    "UserService_GetMe": ("GET", "/v1/users/me"),
    "UserService_ListUsers": ("GET", "/v1/users"),
    "UserService_CreateUser": ("POST", "/v1/users"),
    "UserService_UpdateUser": ("PATCH", "/v1/users/{userId}"),
}


def test_demo_document_has_every_route_once(demo):
    table, document = demo
    operations = _operations(document)
    assert {k: v[:2] for k, v in operations.items()} == DEMO_OPERATIONS
    # ...and that is exactly the route table: one operation per (binding, method).
    assert Counter((r.binding.http_method, r.full_method, r.template) for r in table.routes) == Counter(
        (kind, op["x-edge-grpc-method"], op["x-edge-template"]) for kind, _, op in operations.values()
    )
    assert "x-edge-skipped" not in document
    assert {t["name"] for t in document["tags"]} == {"LibraryService", "UserService"}
    assert operations["UserService_GetMe"][2]["tags"] == ["UserService"]


def test_demo_parameters_and_bodies(demo):
    _, document = demo
    ops = {k: v[2] for k, v in _operations(document).items()}

    list_shelves = ops["LibraryService_ListShelves"]
    assert set(_params(list_shelves, "query")) == {"pageSize", "pageToken"}
    assert _params(list_shelves, "query")["pageSize"]["schema"] == {"type": "integer", "format": "int32"}
    assert "requestBody" not in list_shelves

    get_shelf = ops["LibraryService_GetShelf"]
    (name,) = get_shelf["parameters"]
    assert name["in"] == "path" and name["required"] is True
    assert name["schema"] == {"type": "string", "pattern": "^shelves/[^/]+$"}
    assert "shelves/*" in name["description"] and "'/'" in name["description"]

    get_book = ops["LibraryService_GetBook"]
    book_name = _params(get_book, "path")["name_1"]
    assert book_name["x-edge-field"] == "name" and book_name["x-edge-pattern"] == "shelves/*/books/*"
    assert set(_params(get_book, "query")) == {"bookId"}  # name is bound by the path
    assert set(_params(ops["LibraryService_GetBook_1"], "query")) == {"name"}

    check = ops["LibraryService_CheckShelf"]
    assert "content" not in check["responses"]["200"] and "content" not in check["responses"]["default"]

    delete = ops["LibraryService_DeleteShelf"]
    assert _params(delete, "query")["force"]["schema"] == {"type": "boolean"}

    create_shelf = ops["LibraryService_CreateShelf"]
    assert create_shelf["requestBody"]["content"]["application/json"]["schema"]["$ref"] == SCHEMAS + "edgedemo.library.v1.Shelf"
    assert set(_params(create_shelf, "query")) == {"shelfId"}

    archive = ops["LibraryService_ArchiveShelf"]  # the default route: body "*", no query
    assert archive["requestBody"]["content"]["application/json"]["schema"] == {"$ref": SCHEMAS + "edgedemo.library.v1.ArchiveShelfRequest"}
    assert "parameters" not in archive

    move = ops["LibraryService_MoveBook"]  # body "*" with a path variable and a verb
    assert set(_params(move, "path")) == {"name"} and not _params(move, "query")
    assert "`name`" in move["requestBody"]["description"]

    update = ops["LibraryService_UpdateBook"]
    assert _params(update, "path")["name_1"]["x-edge-field"] == "book.name"
    assert set(_params(update, "query")) == {"updateMask"}
    assert "the fields the request body names" in _params(update, "query")["updateMask"]["description"]
    assert update["requestBody"]["content"]["application/json"]["schema"]["$ref"] == SCHEMAS + "edgedemo.library.v1.Book"

    list_books = ops["LibraryService_ListBooks"]
    genre = _params(list_books, "query")["genre"]
    assert genre["schema"] == {"$ref": SCHEMAS + "edgedemo.library.v1.Genre"}
    assert _params(list_books, "query")["author"]["description"] == "Exact, case-insensitive match on Book.author when set."

    bare = ops["LibraryService_ListShelves_1"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert bare["type"] == "array" and bare["items"] == {"$ref": SCHEMAS + "edgedemo.library.v1.Shelf"}

    stream = ops["LibraryService_StreamBooks"]
    book = {"$ref": SCHEMAS + "edgedemo.library.v1.Book"}
    assert stream["responses"]["200"]["content"] == {  # the default format first, then what Accept may choose
        "application/x-ndjson": {"schema": book},
        "application/json": {"schema": {"type": "array", "items": book}},
        "text/event-stream": {"schema": {"type": "string"}},
    }
    assert list(stream["responses"]["200"]["content"])[0] == "application/x-ndjson"
    assert stream["x-edge-streaming"] == "server"
    imported = ops["LibraryService_ImportBooks"]
    content = imported["requestBody"]["content"]
    item = {"$ref": SCHEMAS + "edgedemo.library.v1.ImportBooksRequest"}
    assert content == {"application/json": {"schema": {"type": "array", "items": item}},
                       "application/x-ndjson": {"schema": item}}
    assert "first message only" in imported["requestBody"]["description"]
    assert imported["x-edge-streaming"] == "client"

    cover = ops["LibraryService_GetBookCover"]["responses"]["200"]["content"]
    assert cover == {"*/*": {"schema": {"type": "string", "format": "binary"}}}

    list_users = ops["UserService_ListUsers"]
    assert _params(list_users, "query")["userIds"]["schema"] == {"type": "array", "items": {"type": "string"}}
    update_user = ops["UserService_UpdateUser"]
    assert _params(update_user, "path")["userId"]["x-edge-field"] == "user.user_id"

    for operation in ops.values():
        if operation is not check:
            error = operation["responses"]["default"]["content"]["application/json"]["schema"]
            assert error == {"$ref": SCHEMAS + "google.rpc.Status"}


def test_demo_schemas_are_proto3_json(demo):
    _, document = demo
    schemas = document["components"]["schemas"]
    book = schemas["edgedemo.library.v1.Book"]["properties"]
    assert book["priceCents"] == {"type": "string", "format": "int64"}
    assert book["pageCount"] == {"type": "integer", "format": "int32"}
    assert book["genre"] == {"$ref": SCHEMAS + "edgedemo.library.v1.Genre"}
    assert book["tags"] == {"type": "array", "items": {"type": "string"}}
    assert book["publishTime"]["type"] == "string" and book["publishTime"]["format"] == "date-time"
    assert book["readDuration"]["type"] == "string" and "pattern" in book["readDuration"]
    assert book["title"]["description"] == "Required."
    genre = schemas["edgedemo.library.v1.Genre"]
    assert genre["type"] == "string" and genre["enum"][:2] == ["GENRE_UNSPECIFIED", "FICTION"]
    shelf = schemas["edgedemo.library.v1.Shelf"]["properties"]
    assert shelf["createTime"]["readOnly"] is True
    assert shelf["name"]["description"] == '"shelves/{shelf}".'
    labels = schemas["edgedemo.users.v1.User"]["properties"]["labels"]
    assert labels == {"type": "object", "additionalProperties": {"type": "string"}}
    status = schemas["google.rpc.Status"]["properties"]
    assert status["code"] == {"type": "integer", "format": "int32"}
    assert status["details"]["items"]["properties"]["@type"]["type"] == "string"


def test_demo_comments_become_summaries_and_descriptions(demo):
    _, document = demo
    ops = {k: v[2] for k, v in _operations(document).items()}
    assert ops["LibraryService_ListShelves"]["summary"] == "Lists shelves."
    assert "bare\narray of shelves" in ops["LibraryService_ListShelves"]["description"]
    assert ops["LibraryService_DeleteShelf"]["summary"].startswith("Fails with FAILED_PRECONDITION")
    assert ops["LibraryService_GetShelf"]["summary"] == "LibraryService.GetShelf"  # uncommented


def _query_names_agree_with_mapper(table: RouteTable, document: dict[str, Any]) -> int:
    routes = {(r.binding.http_method, r.full_method, r.template): r for r in table.routes}
    checked = 0
    for kind, _, operation in _operations(document).values():
        route = routes[(kind, operation["x-edge-grpc-method"], operation["x-edge-template"])]
        mapper = route.request_codec.query.mapper
        query = _params(operation, "query")
        for name, parameter in query.items():
            if parameter.get("style") == "deepObject":  # a map: name[key]=value
                key_type = mapper.target(name + "[1]").leaf.key_type  # "1" parses as any key type
                assert key_type, name
            else:
                mapper.target(name)  # raises PathError if the gateway would refuse it
            checked += 1
        if route.binding.body == "*":
            assert not query
            continue
        # Every top-level field the mapper takes, not bound by path or body, is documented.
        bound = set(route.binding.template.field_paths()) | {route.binding.body}
        for field in route.method.input_type.fields:
            if field.name in bound or any(b.startswith(field.name + ".") for b in bound):
                continue
            try:
                mapper.target(field.name)
            except PathError:
                try:
                    mapper.target(field.name + "[1]")  # a map field with a text form for its values
                except PathError:
                    continue
            if field.enum_type is not None and field.enum_type.full_name == "google.protobuf.NullValue":
                continue
            assert field.json_name in query, (operation["operationId"], field.name)
    return checked


def test_query_parameters_are_what_the_query_mapper_accepts(demo, trees):
    assert _query_names_agree_with_mapper(*demo) > 10
    assert _query_names_agree_with_mapper(*trees) > 40


def test_the_patch_mask_note_follows_the_option():
    table, loaded = _table(DEMO_SET, options=profile("envoy"))
    update = _operations(_valid(build_openapi(table, files=_files(loaded))))["LibraryService_UpdateBook"][2]
    assert "the request body names" not in _params(update, "query")["updateMask"].get("description", "")


def test_use_proto_names():
    table, loaded = _table(DEMO_SET, options=TranscodingOptions(use_proto_names=True))
    document = _valid(build_openapi(table, files=_files(loaded)))
    ops = {k: v for k, v in _operations(document).items()}
    assert set(_params(ops["LibraryService_ListShelves"][2], "query")) == {"page_size", "page_token"}
    assert ops["UserService_GetUser"][1] == "/v1/users/{user_id}"
    assert "price_cents" in document["components"]["schemas"]["edgedemo.library.v1.Book"]["properties"]
    assert "proto field names" in document["info"]["description"]


def test_kinds_recursion_and_well_known_types(trees):
    _, document = trees
    schemas = document["components"]["schemas"]
    node = schemas["edgeopenapi.v1.Node"]
    assert node["description"] == "One node; nodes nest without limit."
    ref = {"$ref": SCHEMAS + "edgeopenapi.v1.Node"}
    assert node["properties"]["children"] == {"type": "array", "items": ref}
    assert node["properties"]["parent"] == ref
    assert node["properties"]["byLabel"] == {"type": "object", "additionalProperties": ref}

    kinds = schemas["edgeopenapi.v1.Kinds"]["properties"]
    expected = {
        "fInt32": ("integer", "int32"), "fSint32": ("integer", "int32"), "fSfixed32": ("integer", "int32"),
        "fUint32": ("integer", "int64"), "fFixed32": ("integer", "int64"),
        "fInt64": ("string", "int64"), "fSint64": ("string", "int64"), "fSfixed64": ("string", "int64"),
        "fUint64": ("string", "uint64"), "fFixed64": ("string", "uint64"),
        "fFloat": ("number", "float"), "fDouble": ("number", "double"),
        "fBool": ("boolean", None), "fString": ("string", None), "fBytes": ("string", "byte"),
        "at": ("string", "date-time"), "took": ("string", None), "mask": ("string", None),
        "structValue": ("object", None), "listValue": ("array", None), "any": ("object", None), "empty": ("object", None),
        "wInt64": (["string", "null"], "int64"), "wDouble": (["number", "null"], "double"),
        "wBool": (["boolean", "null"], None), "wString": (["string", "null"], None),
        "wBytes": (["string", "null"], "byte"), "wInt32": (["integer", "null"], "int32"),
        "nullValue": ("null", None),
    }
    for name, (json_type, fmt) in expected.items():
        assert (kinds[name].get("type"), kinds[name].get("format")) == (json_type, fmt), name
    assert "type" not in kinds["anyJson"]  # google.protobuf.Value: any JSON
    assert kinds["any"]["required"] == ["@type"]
    assert "NaN" in kinds["fDouble"]["description"]
    assert kinds["ids"] == {"type": "array", "items": {"type": "string", "format": "int64"}}
    assert kinds["colors"]["items"] == {"$ref": SCHEMAS + "edgeopenapi.v1.Kinds.Color"}
    assert schemas["edgeopenapi.v1.Kinds.Color"] == {"type": "string", "enum": ["COLOR_UNSPECIFIED", "RED", "GREEN"]}
    assert kinds["counts"] == {"type": "object", "additionalProperties": {"type": "string", "format": "int64"}}
    assert kinds["innerByNumber"]["propertyNames"] == {"pattern": "^-?[0-9]+$"}
    assert "oneof `choice`" in kinds["choiceText"]["description"] and "`choiceNumber`" in kinds["choiceText"]["description"]
    assert "description" not in kinds["maybe"]  # proto3 optional: a synthetic oneof, no choice to explain
    assert "renamed" in kinds and "customNamed" not in kinds
    assert kinds["oldField"]["deprecated"] is True
    inner = schemas["edgeopenapi.v1.Kinds.Inner"]["properties"]
    assert inner["again"] == {"$ref": SCHEMAS + "edgeopenapi.v1.Kinds.Inner"}


def test_trees_operations(trees):
    table, document = trees
    ops = _operations(document)
    # PURGE has no place in OpenAPI 3.1: noted, not invented.
    assert document["x-edge-skipped"] == [{
        "method": "PURGE", "path": "/v1/{name=trees/*}", "grpcMethod": "edgeopenapi.v1.TreeService/PurgeTree",
        "reason": "OpenAPI 3.1 has no operation for the HTTP method PURGE",
    }]
    assert len(ops) == len(table.routes) - 1
    assert ops["TreeService_DescribeTrees"][:2] == ("OPTIONS", "/v1/trees")
    # Three GET templates that all read /v1/{name} stay three operations.
    assert {k: ops[k][1] for k in ("TreeService_GetNode", "TreeService_GetTree", "TreeService_GetTree_1")} == {
        "TreeService_GetNode": "/v1/{name}", "TreeService_GetTree": "/v1/{name_1}", "TreeService_GetTree_1": "/v1/{name_2}",
    }
    assert ops["TreeService_RenameNode"][:2] == ("PATCH", "/v1/{name}")  # same pattern as GetNode: same path item

    get_node = ops["TreeService_GetNode"][2]
    assert get_node["summary"] == "Fetches one node."
    assert get_node["description"] == "Fetches one node.\n\nThe node comes back with its whole subtree."
    query = _params(get_node, "query")
    assert {"depth", "filter.name", "filter.updateTime"} <= set(query)
    assert not any(n.startswith(("filter.parent", "filter.children", "filter.byLabel")) for n in query)

    blob_path = _params(ops["TreeService_GetBlob"][2], "path")["path"]
    assert blob_path["x-edge-pattern"] == "**" and "'/'" in blob_path["description"]
    put = ops["TreeService_PutBlob"][2]
    assert put["requestBody"]["content"] == {"*/*": {"schema": {"type": "string", "format": "binary"}}}

    count = ops["TreeService_CountNodes"][2]["responses"]["200"]["content"]["application/json"]["schema"]
    assert count == {"type": "string", "format": "int64"}
    upload = ops["TreeService_UploadNodes"][2]["requestBody"]["content"]
    node = {"$ref": SCHEMAS + "edgeopenapi.v1.Node"}
    assert upload == {"application/json": {"schema": {"type": "array", "items": node}},
                      "application/x-ndjson": {"schema": node}}

    get_kinds = _params(ops["TreeService_EchoKinds_1"][2], "query")
    assert get_kinds["structValue"]["content"]["application/json"]["schema"]["type"] == "object"
    assert "inner.note" in get_kinds and "inner.again.note" not in get_kinds
    assert not {"innerByNumber", "inners", "any", "empty", "nullValue"} & set(get_kinds)
    # a map with scalar values: one `counts[key]=value` parameter per entry (deepObject)
    assert get_kinds["counts"]["style"] == "deepObject" and get_kinds["counts"]["explode"] is True
    assert get_kinds["counts"]["schema"] == {"type": "object", "additionalProperties": {"type": "string", "format": "int64"}}
    assert "`counts[key]=value`" in get_kinds["counts"]["description"]
    assert get_kinds["times"]["schema"]["type"] == "array"

    (tag,) = document["tags"]
    assert tag["description"] == "Trees of nodes.\n\nA second paragraph that only the tag description carries."


def test_expanded_path_patterns_give_one_segment_parameters():
    table, loaded = _table(TREES_SET)
    ops = _operations(_valid(build_openapi(table, files=_files(loaded), expand_path_patterns=True)))
    assert ops["TreeService_GetNode"][1] == "/v1/trees/{tree}/nodes/{node}"
    assert ops["TreeService_RenameNode"][1] == "/v1/trees/{tree}/nodes/{node}"
    assert ops["TreeService_GetTree"][1] == "/v1/trees/{tree}"
    assert ops["TreeService_GetTree_1"][1] == "/v1/forests/{forest}/trees/{tree}"
    assert ops["TreeService_CountNodes"][1] == "/v1/trees/{tree}:count"
    assert ops["TreeService_GetBlob"][1] == "/v1/trees/{tree}/blobs/{path}"
    forest = _params(ops["TreeService_GetTree_1"][2], "path")["forest"]
    assert forest["x-edge-field"] == "name" and "forests/{forest}/trees/{tree}" in forest["description"]
    assert _params(ops["TreeService_RenameNode"][2], "path")["node"]["x-edge-field"] == "node.name"

    table, loaded = _table(DEMO_SET)
    ops = _operations(_valid(build_openapi(table, files=_files(loaded), expand_path_patterns=True)))
    assert ops["LibraryService_GetBook"][:2] == ("GET", "/v1/shelves/{shelf}/books/{book}")
    assert ops["LibraryService_UpdateBook"][:2] == ("PATCH", "/v1/shelves/{shelf}/books/{book}")
    assert ops["LibraryService_CheckShelf"][:2] == ("HEAD", "/v1/shelves/{shelf}")
    assert ops["LibraryService_MoveBook"][1] == "/v1/shelves/{shelf}/books/{book}:move"


# path_unescape -> (what its description must say, the value /v1/files/a%2Fb%40c%20d binds)
DECODING = {
    "all-except-reserved": (["reserved characters", "still percent-encoded", "Envoy's default"], "files/a%2Fb%40c d"),
    "all-except-slash": (["`%2F`", "still percent-encoded"], "files/a%2Fb@c d"),
    "all-characters": (["every escape is decoded", "`%2F` into '/'"], "files/a/b@c d"),
    "legacy": (["decoded before routing", "separates segments"], "files/a/b@c d"),
}


@pytest.mark.parametrize("mode", DECODING)
@pytest.mark.parametrize("expand", [False, True])
def test_multi_segment_parameters_say_how_they_are_percent_decoded(mode, expand):
    """`{name=files/**}`: the description names the route's path_unescape and says what
    reaches the field, and the route table binds exactly that."""
    table, loaded = _table(PATHS_SET, options=profile("edge", {"path_unescape": mode}))
    document = _valid(build_openapi(table, files=_files(loaded), expand_path_patterns=expand))
    (get_file,) = [op for _, _, op in _operations(document).values() if op["x-edge-template"] == "/v1/{name=files/**}"]
    (name,) = _params(get_file, "path").values()
    said, bound = DECODING[mode]
    assert f"`path_unescape: {mode}`" in name["description"]
    for words in said:
        assert words in name["description"]
    route, bindings = table.lookup("GET", "/v1/files/a%2Fb%40c%20d")
    assert route.full_method.endswith("FileService/GetFile") and bindings == [(("name",), bound)]
    # A one-segment variable is always fully decoded: nothing to say about path_unescape.
    one_segment = [p for _, _, op in _operations(document).values() for p in op.get("parameters", [])
                   if p["in"] == "path" and "x-edge-pattern" not in p and "x-edge-field" not in p]
    assert one_segment and not any("path_unescape" in p.get("description", "") for p in one_segment)


def test_security_schemes_and_per_route_requirements(demo):
    table, _ = demo
    scopes = {"edgedemo.library.v1.LibraryService/GetShelf": [{"bearer": ["library.read"]}],
              "edgedemo.library.v1.LibraryService/ListShelves": []}
    security = SecurityInfo(
        schemes={"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        requirements_for=scopes.get,
    )
    document = _valid(build_openapi(table, security=security, servers=["https://api.example.test"]))
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert document["servers"] == [{"url": "https://api.example.test"}]
    ops = {k: v[2] for k, v in _operations(document).items()}
    assert ops["LibraryService_GetShelf"]["security"] == [{"bearer": ["library.read"]}]
    assert ops["LibraryService_ListShelves"]["security"] == []
    assert "security" not in ops["LibraryService_DeleteShelf"]


def test_cache_rebuilds_when_a_reload_changes_the_routes(tmp_path):
    descriptors = tmp_path / "api.binpb"
    shutil.copy(DEMO_SET, descriptors)
    config = GatewayConfig.model_validate(
        {"backends": [{"name": "api", "target": "127.0.0.1:1", "descriptors": str(descriptors)}]}
    )
    cache = OpenApiCache(title="Library")

    async def scenario() -> tuple[bytes, bytes, bytes]:
        registry = BackendRegistry(config)
        try:
            await registry.start(watch=False)
            first = cache.get(registry.table, registry.generation, registry_files(registry))
            again = cache.get(registry.table, registry.generation, registry_files(registry))
            shutil.copy(TREES_SET, descriptors)
            report = await registry.reload()
            assert report.rebuilt
            after = cache.get(registry.table, registry.generation, registry_files(registry))
            return first, again, after
        finally:
            await registry.close()

    first, again, after = asyncio.run(scenario())
    assert again is first and cache.builds == 2
    before_doc, after_doc = _valid(orjson.loads(first)), _valid(orjson.loads(after))
    assert before_doc["info"]["title"] == "Library"
    assert "LibraryService_GetShelf" in _operations(before_doc)
    assert "TreeService_GetNode" in _operations(after_doc) and "LibraryService_GetShelf" not in _operations(after_doc)
    assert _operations(after_doc)["TreeService_GetNode"][2]["summary"] == "Fetches one node."  # files followed the reload


def test_reflection_gives_the_same_routes_without_comments(demo_backend, demo):
    _, from_file = demo

    async def load() -> dict[str, Any]:
        channel = grpc.aio.insecure_channel(demo_backend.target)
        try:
            loaded = await load_from_reflection(channel, timeout=10)
            table, problems = RouteTable.build([BackendSource("demo", loaded, channel)])
            assert problems == []
            return build_openapi(table, files=loaded.files)
        finally:
            await channel.close()

    document = _valid(asyncio.run(load()))
    assert {k: v[:2] for k, v in _operations(document).items()} == DEMO_OPERATIONS
    assert document["components"]["schemas"].keys() == from_file["components"]["schemas"].keys()
    # grpcio's reflection serves descriptors without source info: no comments to carry.
    assert _operations(document)["LibraryService_ListShelves"][2]["summary"] == "LibraryService.ListShelves"


def test_docs_page_links_the_document_and_lists_operations_without_network(demo):
    _, document = demo
    page = docs_html("/openapi.json", document)
    assert 'url: "/openapi.json"' in page and "swagger-ui-bundle.js" in page
    assert "<code>HEAD</code></td><td><code>/v1/{name}</code></td>" in page
    assert "Lists shelves." in page and "LibraryService_GetBook_1" in page
    hostile = docs_html('/x"</script><script>alert(1)</script>')
    assert "<script>alert(1)" not in hostile


def _edge(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "edge.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)


def test_cli_writes_the_document(tmp_path):
    config = tmp_path / "edge.yaml"
    config.write_text(f"backends:\n  - name: demo\n    target: 127.0.0.1:1\n    descriptors: {DEMO_SET}\n")
    result = _edge("openapi", "--config", str(config))
    assert result.returncode == 0, result.stderr
    document = _valid(json.loads(result.stdout))
    assert {k: v[:2] for k, v in _operations(document).items()} == DEMO_OPERATIONS
    assert _operations(document)["LibraryService_ListShelves"][2]["summary"] == "Lists shelves."

    out = tmp_path / "openapi.json"
    result = _edge("openapi", "--config", str(config), "--output", str(out))
    assert result.returncode == 0 and result.stdout == ""
    assert json.loads(out.read_text()) == document


def test_cli_fails_when_a_backend_does_not_load(tmp_path, unused_port):
    config = tmp_path / "edge.yaml"
    config.write_text(f"backends:\n  - {{name: gone, target: '127.0.0.1:{unused_port}', timeout: 1s}}\n")
    result = _edge("openapi", "--config", str(config))
    assert result.returncode == 1
    assert result.stdout == ""
    assert "backend gone" in result.stderr and "no OpenAPI document written" in result.stderr


BODY_SET = ROOT / "protos" / "compatbody" / "descriptors.binpb"
RECORD = "edgecompat.body.v1.Record"


def _mixed_table(top: TranscodingOptions, **per_backend: TranscodingOptions):
    """A table of the demo backend (b0) and the compatbody backend (b1), each with its own options."""
    channel = _loop_bound(lambda: grpc.aio.insecure_channel("127.0.0.1:1"))
    loaded = [load_from_file(DEMO_SET), load_from_file(BODY_SET)]
    sources = [BackendSource(name, d, channel, per_backend.get(name, top)) for name, d in zip(("b0", "b1"), loaded)]
    table, problems = RouteTable.build(sources, top)
    assert problems == []
    return table, loaded


def test_a_backend_that_prints_differently_gets_its_own_schemas():
    """Routes carry their backend's options: names, enum form and nulls follow them per backend."""
    own = TranscodingOptions(use_proto_names=True, enums_as_ints=True, emit_unpopulated=True,
                             unset_messages_as_null=True)
    table, loaded = _mixed_table(TranscodingOptions(), b1=own)
    document = _valid(build_openapi(table, files=_files(loaded)))
    schemas = document["components"]["schemas"]
    # the gateway-wide variant keeps the plain names; the demo backend uses it
    assert "edgedemo.library.v1.Book" in schemas and "priceCents" in schemas["edgedemo.library.v1.Book"]["properties"]
    assert schemas["edgedemo.library.v1.Genre"]["type"] == "string"
    assert not any(name.startswith("edgedemo.") and "-" in name for name in schemas)
    suffix = "-proto_names-enum_numbers-nulls"
    assert RECORD not in schemas
    record = schemas[RECORD + suffix]["properties"]
    assert "page_count" in record and "pageCount" not in record and "display_name" in record
    status = schemas["edgecompat.body.v1.Status" + suffix]
    assert status["type"] == "integer" and status["enum"] == [0, 1, 2] and "`2`: `ARCHIVED`" in status["description"]
    assert record["author"]["anyOf"] == [{"$ref": SCHEMAS + "edgecompat.body.v1.Author" + suffix}, {"type": "null"}]
    assert record["extra"]["anyOf"][1] == {"type": "null"} and record["create_time"]["anyOf"][1] == {"type": "null"}
    assert "anyOf" not in record["source_author"]  # a oneof member is never printed when unset
    assert record["rating"] == {"type": "integer", "format": "int32"}  # an optional scalar: left out, not null
    assert record["edition"]["type"] == ["integer", "null"]  # a wrapper admits null already
    ops = _operations(document)
    create = ops["BodyService_Create"][2]
    reply = create["responses"]["200"]
    assert reply["content"]["application/json"]["schema"] == {"$ref": SCHEMAS + RECORD + suffix}
    assert "proto field names, enums as numbers, every field" in reply["description"]
    assert "Responses use lowerCamelCase JSON names, enums as value names" in document["info"]["description"]
    get = ops["BodyService_Get"][2]
    assert {"page_count", "price_cents", "display_name"} <= set(_params(get, "query"))
    books = ops["LibraryService_ListBooks"][2]
    assert "Responses use" not in books["responses"]["200"]["description"]
    assert "pageSize" in _params(books, "query")


def test_the_gateway_wide_variant_is_the_documents_own():
    """grpc-gateway's printing gateway-wide, one backend back on edge's: the suffix names what differs."""
    gateway = TranscodingOptions().replace(emit_unpopulated=True, unset_messages_as_null=True)
    table, loaded = _mixed_table(gateway, b0=TranscodingOptions())
    document = _valid(build_openapi(table, files=_files(loaded)))
    schemas = document["components"]["schemas"]
    assert schemas[RECORD]["properties"]["author"]["anyOf"][1] == {"type": "null"}
    assert "anyOf" not in schemas["edgedemo.library.v1.Book-no_nulls"]["properties"]["publishTime"]
    assert "every field, zero values too, and unset message fields as null" in document["info"]["description"]
