"""A backend's service descriptors, from server reflection or a descriptor-set file.

Each load builds a fresh DescriptorPool, so backends never clash over a file
name and a reload never mixes old and new definitions. The reflection client is
async on purpose: grpcio-reflection's `ProtoReflectionDescriptorDatabase` is
synchronous and would stall the gateway's event loop. It speaks
`grpc.reflection.v1` first and falls back to `v1alpha`; the two are
wire-identical, so grpcio-reflection's v1alpha messages serve both. A
`list_services` probe picks the protocol; then every descriptor request of the
load goes over a single bidi stream.

Custom options (`google.api.http`, the gateway's own) resolve only when their
extension module was imported before the first `GetOptions()` call on a pool's
descriptors; this module imports the googleapis ones.
"""
from __future__ import annotations

import importlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from google.api import annotations_pb2 as _annotations_pb2  # noqa: F401 - registers google.api.http
from google.api import field_behavior_pb2 as _field_behavior_pb2  # noqa: F401 - registers field_behavior
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.message import DecodeError
from grpc_reflection.v1alpha import reflection_pb2

REFLECTION_V1 = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
REFLECTION_V1ALPHA = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
# Served beside the real services, never transcoded unless explicitly allow-listed.
INFRASTRUCTURE_PREFIXES = ("grpc.reflection.", "grpc.health.")
# Files this process has compiled in; used when a backend's reflection or
# descriptor set lacks them (some servers do not serve well-known types).
_SHIPPED_PREFIXES = ("google/protobuf/", "google/api/", "google/rpc/", "google/type/", "google/longrunning/")


class DescriptorLoadError(Exception):
    """Descriptors could not be loaded; the message names the backend problem."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class LoadedDescriptors:
    pool: descriptor_pool.DescriptorPool
    services: list[str]  # full names, in the order found
    files: list[descriptor_pb2.FileDescriptorProto]  # dependencies before dependants
    source: str = field(default="")  # "grpc.reflection.v1", "grpc.reflection.v1alpha" or the file path


# -- reflection --------------------------------------------------------------------------------


async def load_from_reflection(
    channel: grpc.aio.Channel, *, timeout: float, services: list[str] | None = None
) -> LoadedDescriptors:
    """Ask the backend on `channel` for its services and every file they need.

    `timeout` bounds the whole load (both protocol attempts); `services`, when
    given, is an allow-list and each entry must be served.
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    deadline = time.monotonic() + timeout
    try:
        for path in (REFLECTION_V1, REFLECTION_V1ALPHA):
            listing = await _list_services(channel, path, _remaining(deadline, timeout))
            if listing is not None:
                break
        else:
            raise DescriptorLoadError(
                "backend does not serve gRPC server reflection (neither grpc.reflection.v1 nor v1alpha); "
                "enable reflection on the backend or configure a descriptor set file"
            )
        wanted = _select_services(listing, services, origin="backend")
        files = await _fetch_files(channel, path, wanted, _remaining(deadline, timeout))
    except grpc.aio.AioRpcError as err:
        raise DescriptorLoadError(_rpc_problem(err, timeout)) from err
    return _assemble(files, wanted, origin="reflection", source=path.split("/")[1].rsplit(".", 1)[0])


def _remaining(deadline: float, timeout: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise DescriptorLoadError(f"backend did not answer reflection within {timeout:g}s")
    return left


def _rpc_problem(err: grpc.aio.AioRpcError, timeout: float) -> str:
    code, details = err.code(), err.details() or ""
    if code is grpc.StatusCode.UNAVAILABLE:
        return f"backend unreachable: {details or 'connection failed'}"
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"backend did not answer reflection within {timeout:g}s"
    return f"reflection request failed with {code.name}: {details}"


async def _list_services(channel: grpc.aio.Channel, path: str, timeout: float) -> list[str] | None:
    """The served service names, or None when `path` is not served.

    A unary-request call, not the bidi stream: when a server rejects a stream
    at once, grpc.aio can fail the client's first write and report INTERNAL
    instead of the server's UNIMPLEMENTED, which would hide the v1alpha fallback.
    """
    probe = channel.unary_stream(
        path,
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    try:
        responses = [r async for r in probe(reflection_pb2.ServerReflectionRequest(list_services="*"), timeout=timeout)]
    except grpc.aio.AioRpcError as err:
        if err.code() is grpc.StatusCode.UNIMPLEMENTED:
            return None
        raise
    if not responses:
        raise DescriptorLoadError("backend answered list_services with nothing")
    _raise_on_error(responses[0], "list_services")
    return [service.name for service in responses[0].list_services_response.service]


class _ReflectionStream:
    """Request/response pairs over one bidi stream; requests are pipelined."""

    def __init__(self, call: grpc.aio.StreamStreamCall) -> None:
        self.call = call

    async def ask(
        self, requests: list[reflection_pb2.ServerReflectionRequest]
    ) -> list[reflection_pb2.ServerReflectionResponse]:
        for request in requests:
            await self.call.write(request)
        responses = []
        for _ in requests:
            response = await self.call.read()
            if response is grpc.aio.EOF:
                raise DescriptorLoadError("backend closed the reflection stream before answering every request")
            responses.append(response)
        return responses


async def _fetch_files(
    channel: grpc.aio.Channel, path: str, services: list[str], timeout: float
) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    """The files defining `services` and all their imports, over one bidi stream."""
    call = channel.stream_stream(
        path,
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )(timeout=timeout)
    stream = _ReflectionStream(call)
    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    try:
        answers = await stream.ask(
            [reflection_pb2.ServerReflectionRequest(file_containing_symbol=name) for name in services]
        )
        for name, answer in zip(services, answers):
            _add_files(files, answer, f"the file defining service {name}")

        tried: set[str] = set()
        while missing := _missing_dependencies(files, exclude=tried):
            tried.update(missing)
            answers = await stream.ask(
                [reflection_pb2.ServerReflectionRequest(file_by_filename=name) for name in missing]
            )
            for name, answer in zip(missing, answers):
                if answer.HasField("error_response") and (shipped := _shipped_file(name)) is not None:
                    files[name] = shipped
                    continue
                _add_files(files, answer, f"file {name}")
        await call.done_writing()
    finally:
        call.cancel()
    return files


def _raise_on_error(response: reflection_pb2.ServerReflectionResponse, what: str) -> None:
    if response.HasField("error_response"):
        error = response.error_response
        code = next((c.name for c in grpc.StatusCode if c.value[0] == error.error_code), str(error.error_code))
        raise DescriptorLoadError(f"reflection could not answer {what}: {code} {error.error_message}".rstrip())


def _add_files(
    files: dict[str, descriptor_pb2.FileDescriptorProto],
    response: reflection_pb2.ServerReflectionResponse,
    what: str,
) -> None:
    _raise_on_error(response, f"a request for {what}")
    if not response.HasField("file_descriptor_response"):
        raise DescriptorLoadError(f"reflection answered the request for {what} with no file descriptors")
    for raw in response.file_descriptor_response.file_descriptor_proto:
        try:
            proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
        except DecodeError as err:
            raise DescriptorLoadError(f"reflection sent an unparsable descriptor for {what}: {err}") from err
        if not proto.name:
            raise DescriptorLoadError(f"reflection sent a descriptor without a file name for {what}")
        files.setdefault(proto.name, proto)


def _missing_dependencies(
    files: Mapping[str, descriptor_pb2.FileDescriptorProto], exclude: Iterable[str] = ()
) -> list[str]:
    excluded = set(exclude)
    return sorted({dep for f in files.values() for dep in f.dependency if dep not in files and dep not in excluded})


def _shipped_file(name: str) -> descriptor_pb2.FileDescriptorProto | None:
    """A file as compiled into this process, if it is one: a well-known or googleapis
    file, or any other already in the default pool (such as the gateway's own option
    protos that backend protos import)."""
    if not name.endswith(".proto"):
        return None
    pool = descriptor_pool.Default()
    try:
        found = pool.FindFileByName(name)
    except KeyError:
        if not name.startswith(_SHIPPED_PREFIXES):
            return None
        try:
            importlib.import_module(name[: -len(".proto")].replace("/", ".") + "_pb2")
            found = pool.FindFileByName(name)
        except (ImportError, KeyError):
            return None
    proto = descriptor_pb2.FileDescriptorProto()
    found.CopyToProto(proto)
    return proto


# -- descriptor-set files ----------------------------------------------------------------------


def load_from_file(path: str | Path, services: list[str] | None = None) -> LoadedDescriptors:
    """Load a `protoc --include_imports --descriptor_set_out=...` file (a FileDescriptorSet)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DescriptorLoadError(f"cannot read descriptor set {path}: {err.strerror or err}") from err
    descriptor_set = descriptor_pb2.FileDescriptorSet()
    try:
        descriptor_set.ParseFromString(data)
    except DecodeError as err:
        raise DescriptorLoadError(f"{path} is not a FileDescriptorSet: {err}") from err
    # Arbitrary bytes can parse as unknown fields; a real set names each of its files.
    if not descriptor_set.file or any(not f.name for f in descriptor_set.file):
        raise DescriptorLoadError(
            f"{path} is not a FileDescriptorSet (expected the output of protoc --descriptor_set_out)"
        )
    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    for proto in descriptor_set.file:
        if proto.name in files and files[proto.name] != proto:
            raise DescriptorLoadError(f"{path} holds two different descriptors named {proto.name}")
        files[proto.name] = proto
    while missing := _missing_dependencies(files):
        for name in missing:
            shipped = _shipped_file(name)
            if shipped is None:
                importer = next(f.name for f in files.values() if name in f.dependency)
                raise DescriptorLoadError(
                    f"{path}: {importer} imports {name}, which the set does not include "
                    "(build it with protoc --include_imports)"
                )
            files[name] = shipped
    declared = [
        f"{proto.package}.{service.name}" if proto.package else service.name
        for proto in descriptor_set.file
        for service in proto.service
    ]
    wanted = _select_services(declared, services, origin=str(path))
    return _assemble(files, wanted, origin=str(path), source=str(path))


# -- shared ------------------------------------------------------------------------------------


def _select_services(available: list[str], allow: list[str] | None, origin: str) -> list[str]:
    """The allow-list (each entry must exist), else everything but infrastructure services."""
    if allow is None:
        wanted = [name for name in available if not name.startswith(INFRASTRUCTURE_PREFIXES)]
        if not wanted:
            raise DescriptorLoadError(f"{origin} declares no services besides reflection and health")
        return wanted
    absent = [name for name in allow if name not in available]
    if absent:
        offered = ", ".join(available) or "none"
        raise DescriptorLoadError(f"{origin} does not serve {', '.join(absent)} (it serves: {offered})")
    return list(dict.fromkeys(allow))


def _dependency_order(
    files: Mapping[str, descriptor_pb2.FileDescriptorProto], origin: str
) -> list[descriptor_pb2.FileDescriptorProto]:
    ordered: list[descriptor_pb2.FileDescriptorProto] = []
    state: dict[str, str] = {}  # name -> "visiting" | "done"

    def visit(name: str, importer: str) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            raise DescriptorLoadError(f"{origin}: import cycle through {name}")
        proto = files.get(name)
        if proto is None:
            raise DescriptorLoadError(f"{origin}: {importer} imports {name}, which could not be found")
        state[name] = "visiting"
        for dep in proto.dependency:
            visit(dep, name)
        state[name] = "done"
        ordered.append(proto)

    for name in sorted(files):
        visit(name, name)
    return ordered


def _assemble(
    files: Mapping[str, descriptor_pb2.FileDescriptorProto], services: list[str], *, origin: str, source: str
) -> LoadedDescriptors:
    ordered = _dependency_order(files, origin)
    pool = descriptor_pool.DescriptorPool()
    for proto in ordered:
        try:
            pool.AddSerializedFile(proto.SerializeToString())
        except (TypeError, ValueError) as err:
            raise DescriptorLoadError(f"{origin}: descriptor {proto.name} is broken: {err}") from err
    for name in services:
        try:
            pool.FindServiceByName(name)
        except KeyError:
            raise DescriptorLoadError(f"{origin}: no loaded file defines service {name}") from None
    return LoadedDescriptors(pool=pool, services=list(services), files=ordered, source=source)
