"""The demo backends over real gRPC: the behaviour gateway tests build on."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2, status_pb2

from edgedemo import library_pb2 as lib
from edgedemo import library_pb2_grpc, users_pb2, users_pb2_grpc
from edgedemo.library_server import LibraryServicer
from edgedemo.recording import CALL_KEY, DELAY_KEY, FAIL_KEY, SERVER_KEY
from tests.support.backends import RunningDemoBackend
from transcoding.descriptors import load_from_reflection

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]


def call(backend: RunningDemoBackend, body: Callable[[library_pb2_grpc.LibraryServiceStub, users_pb2_grpc.UserServiceStub], Awaitable[T]]) -> T:
    async def go() -> T:
        async with grpc.aio.insecure_channel(backend.target) as channel:
            return await body(library_pb2_grpc.LibraryServiceStub(channel), users_pb2_grpc.UserServiceStub(channel))

    return asyncio.run(go())


def failure(backend: RunningDemoBackend, body: Callable[..., Awaitable[Any]]) -> tuple[grpc.StatusCode, status_pb2.Status]:
    """Run a call expected to fail; its code and the google.rpc.Status from the trailer."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        call(backend, body)
    trailer = dict(caught.value.trailing_metadata() or ())
    status = status_pb2.Status.FromString(trailer["grpc-status-details-bin"])
    assert status.code == caught.value.code().value[0] and status.message == caught.value.details()
    return caught.value.code(), status


def detail(status: status_pb2.Status, kind: type[T]) -> T:
    [packed] = [d for d in status.details if d.Is(kind.DESCRIPTOR)]
    found = kind()
    packed.Unpack(found)
    return found


# -- seeded data, reads, pagination ------------------------------------------------------------


def test_seeded_shelves_page_with_opaque_tokens(demo_backend: RunningDemoBackend) -> None:
    async def body(library, _users):
        first = await library.ListShelves(lib.ListShelvesRequest(page_size=2))
        second = await library.ListShelves(lib.ListShelvesRequest(page_size=2, page_token=first.next_page_token))
        return first, second

    first, second = call(demo_backend, body)
    assert [s.name for s in first.shelves] == ["shelves/scifi", "shelves/history"]
    assert first.next_page_token and not second.next_page_token
    assert [s.name for s in second.shelves] == ["shelves/poetry"]


def test_list_books_filters_by_author_and_genre(demo_backend: RunningDemoBackend) -> None:
    async def body(library, _users):
        by_author = await library.ListBooks(lib.ListBooksRequest(parent="shelves/scifi", author="ursula k. le guin"))
        fantasy = await library.ListBooks(lib.ListBooksRequest(parent="shelves/scifi", genre=lib.FANTASY))
        return by_author, fantasy

    by_author, fantasy = call(demo_backend, body)
    assert [b.title for b in by_author.books] == ["The Left Hand of Darkness", "A Wizard of Earthsea"]
    assert [b.title for b in fantasy.books] == ["A Wizard of Earthsea"]


def test_get_book_by_name_or_bare_id(demo_backend: RunningDemoBackend) -> None:
    async def body(library, _users):
        return (
            await library.GetBook(lib.GetBookRequest(name="shelves/history/books/spqr")),
            await library.GetBook(lib.GetBookRequest(book_id="spqr")),
        )

    by_name, by_id = call(demo_backend, body)
    assert by_name == by_id and by_name.price_cents == 1850 and by_name.read_duration.seconds == 20 * 3600


def test_search_cover_and_stream(demo_backend: RunningDemoBackend) -> None:
    async def body(library, _users):
        found = await library.SearchBooks(lib.SearchBooksRequest(q="CLASSIC"))
        cover = await library.GetBookCover(lib.GetBookCoverRequest(name="shelves/scifi/books/dune"))
        streamed = [b.name async for b in library.StreamBooks(lib.StreamBooksRequest(parent="shelves/history", delay_ms=5))]
        return found, cover, streamed

    found, cover, streamed = call(demo_backend, body)
    assert {b.title for b in found.books} == {"Dune", "Neuromancer", "The Left Hand of Darkness"}
    assert cover.content_type == "image/svg+xml" and b"<svg" in cover.data and b"Dune" in cover.data
    assert streamed == ["shelves/history/books/spqr", "shelves/history/books/guns-germs-steel"]


# -- writes ------------------------------------------------------------------------------------


def test_create_book_with_request_id_runs_once(demo_backend: RunningDemoBackend) -> None:
    request = lib.CreateBookRequest(parent="shelves/poetry", book=lib.Book(title="Ariel", author="Sylvia Plath"), request_id="r-1")

    async def body(library, _users):
        return await library.CreateBook(request), await library.CreateBook(request), await library.ListBooks(lib.ListBooksRequest(parent="shelves/poetry"))

    first, retried, listed = call(demo_backend, body)
    assert first == retried and first.name.startswith("shelves/poetry/books/")
    assert [b.name for b in listed.books] == [first.name]
    assert demo_backend.recorder.calls["CreateBook"] == 2


def test_update_book_honours_the_mask(demo_backend: RunningDemoBackend) -> None:
    async def body(library, _users):
        return await library.UpdateBook(lib.UpdateBookRequest(
            book=lib.Book(name="shelves/scifi/books/dune", title="Dune (50th anniversary)", author="ignored"),
            update_mask=field_mask_pb2.FieldMask(paths=["title"]),
        ))

    updated = call(demo_backend, body)
    assert (updated.title, updated.author, updated.page_count) == ("Dune (50th anniversary)", "Frank Herbert", 412)


def test_move_import_archive_and_delete(demo_backend: RunningDemoBackend) -> None:
    async def body(library, _users):
        moved = await library.MoveBook(lib.MoveBookRequest(name="shelves/scifi/books/earthsea", other_shelf_name="shelves/poetry"))
        importing = library.ImportBooks()
        for title in ("Odes", "Leaves of Grass"):
            await importing.write(lib.ImportBooksRequest(parent="shelves/poetry", book=lib.Book(title=title)))
        await importing.done_writing()
        imported = await importing
        archived = await library.ArchiveShelf(lib.ArchiveShelfRequest(name="shelves/history"))
        await library.DeleteShelf(lib.DeleteShelfRequest(name="shelves/poetry", force=True))
        shelves = await library.ListShelves(lib.ListShelvesRequest())
        return moved, imported, archived, shelves

    moved, imported, archived, shelves = call(demo_backend, body)
    assert moved.name == "shelves/poetry/books/earthsea"
    assert imported.imported_count == 2 and all(n.startswith("shelves/poetry/books/") for n in imported.names)
    assert archived.archived
    assert [s.name for s in shelves.shelves] == ["shelves/scifi", "shelves/history"]


# -- rich errors -------------------------------------------------------------------------------


def test_not_found_carries_resource_info(demo_backend: RunningDemoBackend) -> None:
    code, status = failure(demo_backend, lambda library, _: library.GetShelf(lib.GetShelfRequest(name="shelves/nope")))
    assert code is grpc.StatusCode.NOT_FOUND
    assert detail(status, error_details_pb2.ResourceInfo).resource_name == "shelves/nope"


def test_invalid_argument_lists_every_field_violation(demo_backend: RunningDemoBackend) -> None:
    code, status = failure(demo_backend, lambda library, _: library.CreateBook(
        lib.CreateBookRequest(parent="shelves/scifi", book=lib.Book(title=" ", page_count=-3))
    ))
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    fields = [v.field for v in detail(status, error_details_pb2.BadRequest).field_violations]
    assert fields == ["book.title", "book.page_count"]

    _, status = failure(demo_backend, lambda library, _: library.ListShelves(lib.ListShelvesRequest(page_size=-1, page_token="bogus")))
    assert [v.field for v in detail(status, error_details_pb2.BadRequest).field_violations] == ["page_size", "page_token"]


def test_already_exists_carries_error_info(demo_backend: RunningDemoBackend) -> None:
    code, status = failure(demo_backend, lambda library, _: library.CreateShelf(
        lib.CreateShelfRequest(shelf=lib.Shelf(theme="Again"), shelf_id="scifi")
    ))
    assert code is grpc.StatusCode.ALREADY_EXISTS
    info = detail(status, error_details_pb2.ErrorInfo)
    assert info.reason == "SHELF_EXISTS" and info.metadata["shelf"] == "shelves/scifi"


def test_failed_precondition_carries_the_violation(demo_backend: RunningDemoBackend) -> None:
    code, status = failure(demo_backend, lambda library, _: library.DeleteShelf(lib.DeleteShelfRequest(name="shelves/scifi")))
    assert code is grpc.StatusCode.FAILED_PRECONDITION
    [violation] = detail(status, error_details_pb2.PreconditionFailure).violations
    assert (violation.type, violation.subject) == ("NOT_EMPTY", "shelves/scifi")


def test_import_is_all_or_nothing(demo_backend: RunningDemoBackend) -> None:
    async def body(library, _users):
        importing = library.ImportBooks()
        await importing.write(lib.ImportBooksRequest(parent="shelves/poetry", book=lib.Book(title="Fine")))
        await importing.write(lib.ImportBooksRequest(parent="shelves/poetry", book=lib.Book(title="")))
        await importing.done_writing()
        return await importing

    code, status = failure(demo_backend, body)
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert detail(status, error_details_pb2.BadRequest).field_violations[0].field == "requests[1].book.title"
    listed = call(demo_backend, lambda library, _: library.ListBooks(lib.ListBooksRequest(parent="shelves/poetry")))
    assert not listed.books


# -- users -------------------------------------------------------------------------------------


def test_users_me_and_batch_get(demo_backend: RunningDemoBackend) -> None:
    async def body(_library, users):
        me = await users.GetMe(users_pb2.GetMeRequest(), metadata=[("x-user-id", "grace")])
        batch = await users.ListUsers(users_pb2.ListUsersRequest(user_ids=["alan", "ada"]))
        return me, batch

    me, batch = call(demo_backend, body)
    assert me.display_name == "Grace Hopper"
    assert [u.user_id for u in batch.users] == ["alan", "ada"]

    code, status = failure(demo_backend, lambda _, users: users.GetMe(users_pb2.GetMeRequest()))
    assert code is grpc.StatusCode.UNAUTHENTICATED and detail(status, error_details_pb2.ErrorInfo).reason == "NO_IDENTITY"


def test_users_create_and_update(demo_backend: RunningDemoBackend) -> None:
    async def body(_library, users):
        created = await users.CreateUser(users_pb2.CreateUserRequest(
            user_id="linus", user=users_pb2.User(display_name="Linus", email="linus@example.com", labels={"os": "linux"})
        ))
        updated = await users.UpdateUser(users_pb2.UpdateUserRequest(
            user=users_pb2.User(user_id="linus", display_name="Linus T.", email="x"),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
        ))
        return created, updated

    created, updated = call(demo_backend, body)
    assert created.create_time.seconds > 0 and created.labels["os"] == "linux"
    assert (updated.display_name, updated.email) == ("Linus T.", "linus@example.com")

    code, status = failure(demo_backend, lambda _, users: users.CreateUser(users_pb2.CreateUserRequest(
        user=users_pb2.User(display_name="Imposter", email="ADA@example.com")
    )))
    assert code is grpc.StatusCode.ALREADY_EXISTS and detail(status, error_details_pb2.ErrorInfo).reason == "EMAIL_TAKEN"

    code, status = failure(demo_backend, lambda _, users: users.UpdateUser(users_pb2.UpdateUserRequest(
        user=users_pb2.User(user_id="ada"), update_mask=field_mask_pb2.FieldMask(paths=["user_id", "shoe_size"])
    )))
    assert [v.description for v in detail(status, error_details_pb2.BadRequest).field_violations] == [
        "'user_id' cannot be changed", "'shoe_size' is not a field of User",
    ]


# -- recorder and knobs ------------------------------------------------------------------------


def test_recorder_keeps_metadata_deadline_and_outcome(demo_backend: RunningDemoBackend) -> None:
    call(demo_backend, lambda library, _: library.GetShelf(
        lib.GetShelfRequest(name="shelves/scifi"), metadata=[("x-request-id", "abc"), ("x-trace-bin", b"\x01\x02")], timeout=30
    ))
    record = demo_backend.recorder.last("GetShelf")
    assert record.path == "/edgedemo.library.v1.LibraryService/GetShelf"
    assert record.header("x-request-id") == "abc" and record.header("x-trace-bin") == b"\x01\x02"
    assert 0 < record.time_remaining <= 31  # grpc-timeout is rounded up on the wire
    assert record.code is grpc.StatusCode.OK
    assert demo_backend.recorder.metadata[-1]["x-request-id"] == "abc"
    assert demo_backend.recorder.calls == {"GetShelf": 1}


def test_every_call_answers_with_server_and_call_number_headers(demo_backend: RunningDemoBackend) -> None:
    async def body(library, _users):
        numbers = []
        for _ in range(2):
            rpc = library.GetShelf(lib.GetShelfRequest(name="shelves/history"))
            await rpc
            numbers.append(dict(await rpc.initial_metadata()))
        return numbers

    first, second = call(demo_backend, body)
    assert first[SERVER_KEY] == "edgedemo"
    assert (first[CALL_KEY], second[CALL_KEY]) == ("1", "2")


def test_delay_knob_outlasts_a_deadline_and_is_seen_as_cancelled(demo_backend: RunningDemoBackend) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        call(demo_backend, lambda library, _: library.GetShelf(
            lib.GetShelfRequest(name="shelves/scifi"), metadata=[(DELAY_KEY, "5000")], timeout=0.2
        ))
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert demo_backend.recorder.wait_for("GetShelf", finished=True)
    assert demo_backend.recorder.cancelled["GetShelf"] == 1


def test_fail_knob_fails_without_running_the_servicer(demo_backend: RunningDemoBackend) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        call(demo_backend, lambda library, _: library.DeleteShelf(
            lib.DeleteShelfRequest(name="shelves/poetry"), metadata=[(FAIL_KEY, "unavailable")]
        ))
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert demo_backend.recorder.wait_for("DeleteShelf", finished=True)  # abort answers before the record closes
    assert demo_backend.recorder.last("DeleteShelf").code is grpc.StatusCode.UNAVAILABLE
    assert "poetry" in demo_backend.run(_shelf_ids(demo_backend))


async def _shelf_ids(backend: RunningDemoBackend) -> list[str]:
    library: LibraryServicer = backend.server.library
    return list(library.shelves)


def test_serve_entry_point_serves_reflection_until_sigterm() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "protos")])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgedemo.serve", "--port", str(port)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        banner = proc.stdout.readline()
        assert f"127.0.0.1:{port}" in banner

        async def load() -> list[str]:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                return (await load_from_reflection(channel, timeout=10)).services

        assert asyncio.run(load()) == ["edgedemo.library.v1.LibraryService", "edgedemo.users.v1.UserService"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
