"""Descriptor loading against real gRPC servers and real descriptor-set files."""
from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.api import annotations_pb2, field_behavior_pb2
from google.protobuf import descriptor_pb2, json_format, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from edgedemo import library_pb2_grpc
from edgedemo.library_server import LibraryServicer
from edgedemo.recording import CallRecorder, RecordingInterceptor
from tests.support.backends import RunningDemoBackend, add_reflection_v1
from transcoding.descriptors import (
    REFLECTION_V1,
    REFLECTION_V1ALPHA,
    DescriptorLoadError,
    LoadedDescriptors,
    load_from_file,
    load_from_reflection,
)

LIBRARY = "edgedemo.library.v1.LibraryService"
USERS = "edgedemo.users.v1.UserService"


def reflect(target: str, *, timeout: float = 5.0, services: list[str] | None = None) -> LoadedDescriptors:
    async def go() -> LoadedDescriptors:
        async with grpc.aio.insecure_channel(target) as channel:
            return await load_from_reflection(channel, timeout=timeout, services=services)

    return asyncio.run(go())


async def with_server(
    setup: Callable[[grpc.aio.Server], None], body: Callable[[str], Awaitable[Any]], recorder: CallRecorder | None = None
) -> Any:
    """Run `body(target)` against a small grpc.aio server configured by `setup`."""
    server = grpc.aio.server(interceptors=[RecordingInterceptor(recorder or CallRecorder())])
    setup(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        return await body(f"127.0.0.1:{port}")
    finally:
        await server.stop(None)


async def load_async(target: str, **kwargs: Any) -> LoadedDescriptors:
    async with grpc.aio.insecure_channel(target) as channel:
        return await load_from_reflection(channel, **kwargs)


def http_rule(loaded: LoadedDescriptors, method: str) -> Any:
    return loaded.pool.FindMethodByName(method).GetOptions().Extensions[annotations_pb2.http]


def assert_dependency_order(files: list[descriptor_pb2.FileDescriptorProto]) -> None:
    seen: set[str] = set()
    for f in files:
        assert set(f.dependency) <= seen, f"{f.name} comes before its imports"
        seen.add(f.name)


# -- reflection --------------------------------------------------------------------------------


def test_reflection_loads_both_demo_services_with_transitive_imports(demo_backend: RunningDemoBackend) -> None:
    loaded = reflect(demo_backend.target)

    assert loaded.services == [LIBRARY, USERS]
    names = {f.name for f in loaded.files}
    assert {
        "edgedemo/library.proto",
        "edgedemo/users.proto",
        "google/api/annotations.proto",
        "google/api/http.proto",
        "google/api/httpbody.proto",
        "google/protobuf/descriptor.proto",
        "google/protobuf/any.proto",
        "google/protobuf/timestamp.proto",
        "google/protobuf/duration.proto",
        "google/protobuf/field_mask.proto",
        "google/protobuf/empty.proto",
    } <= names
    assert_dependency_order(loaded.files)

    get_book = http_rule(loaded, f"{LIBRARY}.GetBook")
    assert get_book.get == "/v1/{name=shelves/*/books/*}"
    assert [b.get for b in get_book.additional_bindings] == ["/v1/books/{book_id}"]
    check = http_rule(loaded, f"{LIBRARY}.CheckShelf")
    assert (check.custom.kind, check.custom.path) == ("HEAD", "/v1/{name=shelves/*}")
    assert not loaded.pool.FindMethodByName(f"{LIBRARY}.ArchiveShelf").GetOptions().HasExtension(annotations_pb2.http)
    title = loaded.pool.FindMessageTypeByName("edgedemo.library.v1.Book").fields_by_name["title"]
    assert list(title.GetOptions().Extensions[field_behavior_pb2.field_behavior]) == [field_behavior_pb2.REQUIRED]

    # Messages built from the loaded pool speak JSON, well-known types included.
    book_class = message_factory.GetMessageClass(loaded.pool.FindMessageTypeByName("edgedemo.library.v1.Book"))
    book = json_format.Parse(
        '{"title": "Dune", "priceCents": "1099", "publishTime": "1965-08-01T00:00:00Z", "readDuration": "3600s"}',
        book_class(),
    )
    assert book.publish_time.ToJsonString() == "1965-08-01T00:00:00Z" and book.read_duration.seconds == 3600

    # grpcio-reflection serves only v1alpha: v1 was asked first, then the fallback.
    assert loaded.source == "grpc.reflection.v1alpha"
    assert list(demo_backend.recorder.paths) == [REFLECTION_V1, REFLECTION_V1ALPHA]  # first-seen order
    assert demo_backend.recorder.paths[REFLECTION_V1] == 1


def test_reflection_skips_reflection_and_health_services(demo_backend: RunningDemoBackend) -> None:
    async def go() -> tuple[list[str], int]:
        async with grpc.aio.insecure_channel(demo_backend.target) as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            listing = [r async for r in stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="*")]))]
            health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=LIBRARY))
            return [s.name for s in listing[0].list_services_response.service], health.status

    advertised, health_status = asyncio.run(go())
    assert {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= set(advertised)
    assert health_status == health_pb2.HealthCheckResponse.SERVING

    loaded = reflect(demo_backend.target)
    assert loaded.services == [LIBRARY, USERS]


def test_reflection_allow_list_loads_only_named_services(demo_backend: RunningDemoBackend) -> None:
    loaded = reflect(demo_backend.target, services=[USERS])

    assert loaded.services == [USERS]
    assert loaded.pool.FindServiceByName(USERS).methods_by_name["GetMe"].full_name == f"{USERS}.GetMe"
    assert "edgedemo/library.proto" not in {f.name for f in loaded.files}
    with pytest.raises(KeyError):
        loaded.pool.FindServiceByName(LIBRARY)


def test_reflection_allow_list_naming_an_unserved_service_fails(demo_backend: RunningDemoBackend) -> None:
    with pytest.raises(DescriptorLoadError) as caught:
        reflect(demo_backend.target, services=[LIBRARY, "acme.v1.Missing"])
    assert "acme.v1.Missing" in caught.value.message
    assert LIBRARY in caught.value.message  # says what is served instead


def test_reflection_prefers_v1_when_the_server_speaks_it() -> None:
    recorder = CallRecorder()

    def setup(server: grpc.aio.Server) -> None:
        library_pb2_grpc.add_LibraryServiceServicer_to_server(LibraryServicer(), server)
        add_reflection_v1(server, [LIBRARY])  # v1 only: a v1alpha request would fail

    loaded = asyncio.run(with_server(setup, lambda target: load_async(target, timeout=5), recorder))

    assert loaded.services == [LIBRARY]
    assert loaded.source == "grpc.reflection.v1"
    assert recorder.paths[REFLECTION_V1] >= 1
    assert REFLECTION_V1ALPHA not in recorder.paths


def test_unreachable_backend_fails_fast_with_a_clear_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    started = time.monotonic()
    with pytest.raises(DescriptorLoadError) as caught:
        reflect(f"127.0.0.1:{port}", timeout=10)
    assert "unreachable" in caught.value.message
    assert time.monotonic() - started < 10  # refused, not waited out


def test_silent_backend_fails_at_the_timeout() -> None:
    with socket.socket() as sock:  # accepts TCP, never speaks HTTP/2
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        with pytest.raises(DescriptorLoadError) as caught:
            reflect(f"127.0.0.1:{sock.getsockname()[1]}", timeout=0.5)
    assert "within 0.5s" in caught.value.message


def test_backend_without_reflection_fails_with_a_clear_error(start_demo_backend: Callable[..., RunningDemoBackend]) -> None:
    backend = start_demo_backend(reflection=False)
    with pytest.raises(DescriptorLoadError) as caught:
        reflect(backend.target)
    assert "does not serve gRPC server reflection" in caught.value.message
    assert list(backend.recorder.paths) == [REFLECTION_V1, REFLECTION_V1ALPHA]


def _broken_file() -> descriptor_pb2.FileDescriptorProto:
    return descriptor_pb2.FileDescriptorProto(
        name="broken/thing.proto",
        package="broken.v1",
        syntax="proto3",
        message_type=[
            descriptor_pb2.DescriptorProto(
                name="Thing",
                field=[
                    descriptor_pb2.FieldDescriptorProto(
                        name="part", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
                        type_name=".broken.v1.Missing", label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
                    )
                ],
            )
        ],
        service=[
            descriptor_pb2.ServiceDescriptorProto(
                name="Things",
                method=[descriptor_pb2.MethodDescriptorProto(name="Get", input_type=".broken.v1.Thing", output_type=".broken.v1.Thing")],
            )
        ],
    )


def test_broken_descriptor_from_reflection_names_the_file() -> None:
    """A (real) reflection server that serves a descriptor referring to an undefined type."""

    async def reflection_info(
        requests: AsyncIterator[reflection_pb2.ServerReflectionRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[reflection_pb2.ServerReflectionResponse]:
        async for request in requests:
            if request.HasField("list_services"):
                yield reflection_pb2.ServerReflectionResponse(
                    list_services_response=reflection_pb2.ListServiceResponse(
                        service=[reflection_pb2.ServiceResponse(name="broken.v1.Things")]
                    )
                )
            else:
                yield reflection_pb2.ServerReflectionResponse(
                    file_descriptor_response=reflection_pb2.FileDescriptorResponse(
                        file_descriptor_proto=[_broken_file().SerializeToString()]
                    )
                )

    def setup(server: grpc.aio.Server) -> None:
        handler = grpc.stream_stream_rpc_method_handler(
            reflection_info,
            request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("grpc.reflection.v1.ServerReflection", {"ServerReflectionInfo": handler}),)
        )

    with pytest.raises(DescriptorLoadError) as caught:
        asyncio.run(with_server(setup, lambda target: load_async(target, timeout=5)))
    assert "broken/thing.proto" in caught.value.message


# -- descriptor-set files ----------------------------------------------------------------------


def test_descriptor_set_file_loads_demo_services(demo_descriptor_set: Path) -> None:
    loaded = load_from_file(demo_descriptor_set)

    assert loaded.services == [LIBRARY, USERS]
    assert loaded.source == str(demo_descriptor_set)
    assert_dependency_order(loaded.files)
    assert http_rule(loaded, f"{USERS}.GetMe").get == "/v1/users/me"
    assert http_rule(loaded, f"{LIBRARY}.ListShelves").additional_bindings[0].response_body == "shelves"

    only = load_from_file(str(demo_descriptor_set), services=[LIBRARY])
    assert only.services == [LIBRARY]


def test_descriptor_set_without_imports_borrows_well_known_files(demo_descriptor_set: Path, tmp_path: Path) -> None:
    full = descriptor_pb2.FileDescriptorSet.FromString(demo_descriptor_set.read_bytes())
    lean = descriptor_pb2.FileDescriptorSet(file=[f for f in full.file if f.name.startswith("edgedemo/")])
    path = tmp_path / "lean.binpb"
    path.write_bytes(lean.SerializeToString())

    loaded = load_from_file(path)

    assert loaded.services == [LIBRARY, USERS]
    assert http_rule(loaded, f"{LIBRARY}.GetShelf").get == "/v1/{name=shelves/*}"


@pytest.mark.parametrize(
    "content",
    [b"", b"this is not a descriptor set\n", bytes(range(256)), b"\x0a\x03abc"],
    ids=["empty", "text", "binary", "unnamed-file"],
)
def test_garbage_descriptor_set_names_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "garbage.binpb"
    path.write_bytes(content)
    with pytest.raises(DescriptorLoadError) as caught:
        load_from_file(path)
    assert str(path) in caught.value.message


def test_missing_descriptor_set_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(DescriptorLoadError) as caught:
        load_from_file(tmp_path / "absent.binpb")
    assert "absent.binpb" in caught.value.message


def test_descriptor_set_missing_an_import_says_which(tmp_path: Path) -> None:
    orphan = descriptor_pb2.FileDescriptorProto(name="acme/orphan.proto", dependency=["acme/parent.proto"])
    path = tmp_path / "orphan.binpb"
    path.write_bytes(descriptor_pb2.FileDescriptorSet(file=[orphan]).SerializeToString())
    with pytest.raises(DescriptorLoadError) as caught:
        load_from_file(path)
    assert "acme/orphan.proto" in caught.value.message and "acme/parent.proto" in caught.value.message
    assert "--include_imports" in caught.value.message


def test_broken_descriptor_in_a_set_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.binpb"
    path.write_bytes(descriptor_pb2.FileDescriptorSet(file=[_broken_file()]).SerializeToString())
    with pytest.raises(DescriptorLoadError) as caught:
        load_from_file(path)
    assert "broken/thing.proto" in caught.value.message and str(path) in caught.value.message
