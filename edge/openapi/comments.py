"""Proto comments for the OpenAPI document, from `source_code_info`.

Only descriptor-set files built with ``--include_source_info`` carry them
(grpcio's server reflection serves descriptors without it), so every
description here is optional: an element without a comment gets none.
"""
from __future__ import annotations

import textwrap
from collections.abc import Iterable

from google.protobuf import descriptor_pb2

__all__ = ["comment_index", "summary"]


def comment_index(files: Iterable[descriptor_pb2.FileDescriptorProto]) -> dict[str, str]:
    """Full element name -> its comment, for every commented element of `files`.

    Keys are proto full names (``pkg.Msg``, ``pkg.Msg.field``, ``pkg.Svc.Method``);
    enum values are keyed under their enum (``pkg.Enum.VALUE``).
    """
    comments: dict[str, str] = {}
    for proto in files:
        if not proto.source_code_info.location:
            continue
        names = _element_names(proto)
        for location in proto.source_code_info.location:
            name = names.get(tuple(location.path))
            if name is None or name in comments:
                continue
            text = _clean_comment(location.leading_comments or location.trailing_comments)
            if text:
                comments[name] = text
    return comments


def _element_names(proto: descriptor_pb2.FileDescriptorProto) -> dict[tuple[int, ...], str]:
    """source_code_info location path -> full name, for the elements we describe."""
    names: dict[tuple[int, ...], str] = {}
    prefix = f"{proto.package}." if proto.package else ""

    def enum(e: descriptor_pb2.EnumDescriptorProto, scope: str, path: tuple[int, ...]) -> None:
        name = scope + e.name
        names[path] = name
        for i, value in enumerate(e.value):
            names[(*path, 2, i)] = f"{name}.{value.name}"

    def message(m: descriptor_pb2.DescriptorProto, scope: str, path: tuple[int, ...]) -> None:
        name = scope + m.name
        names[path] = name
        for i, f in enumerate(m.field):
            names[(*path, 2, i)] = f"{name}.{f.name}"
        for i, nested in enumerate(m.nested_type):
            message(nested, name + ".", (*path, 3, i))
        for i, e in enumerate(m.enum_type):
            enum(e, name + ".", (*path, 4, i))

    for i, m in enumerate(proto.message_type):
        message(m, prefix, (4, i))
    for i, e in enumerate(proto.enum_type):
        enum(e, prefix, (5, i))
    for i, s in enumerate(proto.service):
        names[(6, i)] = prefix + s.name
        for j, method in enumerate(s.method):
            names[(6, i, 2, j)] = f"{prefix}{s.name}.{method.name}"
    return names


def _clean_comment(text: str) -> str:
    return textwrap.dedent(text.replace("\r\n", "\n")).strip()


def summary(comment: str) -> str:
    """The first paragraph on one line, cut at its first sentence when long."""
    first = " ".join(comment.split("\n\n", 1)[0].split())
    if len(first) > 120:
        end = first.find(". ")
        if 0 < end < 120:
            return first[: end + 1]
    return first

