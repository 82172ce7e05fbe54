"""edgetest.kinds.v1 message classes two ways: the generated modules, and a
fresh DescriptorPool built from the committed descriptor set (which is how the
gateway sees backend types: reflection, never generated code)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.message import Message

DESCRIPTORS = Path(__file__).resolve().parents[2] / "protos" / "edgetest" / "descriptors.binpb"
PACKAGE = "edgetest.kinds.v1"


@dataclass(frozen=True)
class KindsTypes:
    flavour: str
    pool: DescriptorPool
    Kinds: type[Message]
    Inner: type[Message]
    UploadRequest: type[Message]
    DownloadReply: type[Message]
    ListReply: type[Message]
    HttpBody: type[Message]

    def cls(self, full_name: str) -> type[Message]:
        return message_factory.GetMessageClass(self.pool.FindMessageTypeByName(full_name))


def fresh_pool() -> DescriptorPool:
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTORS.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    return pool


def _types(flavour: str, pool: DescriptorPool) -> KindsTypes:
    get = lambda name: message_factory.GetMessageClass(pool.FindMessageTypeByName(name))  # noqa: E731
    return KindsTypes(
        flavour=flavour,
        pool=pool,
        Kinds=get(f"{PACKAGE}.Kinds"),
        Inner=get(f"{PACKAGE}.Inner"),
        UploadRequest=get(f"{PACKAGE}.UploadRequest"),
        DownloadReply=get(f"{PACKAGE}.DownloadReply"),
        ListReply=get(f"{PACKAGE}.ListReply"),
        HttpBody=get("google.api.HttpBody"),
    )


def generated_types() -> KindsTypes:
    from edgetest import kinds_pb2

    return _types("generated", kinds_pb2.DESCRIPTOR.pool)


def pool_types() -> KindsTypes:
    return _types("pool", fresh_pool())


def both() -> list[KindsTypes]:
    return [generated_types(), pool_types()]
