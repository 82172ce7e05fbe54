"""In-memory `edgedemo.library.v1.LibraryService`.

Seeded with a few shelves and books so the demo's first request returns
something. Every failure carries google.rpc error details, so the gateway has
real NOT_FOUND / INVALID_ARGUMENT / ALREADY_EXISTS / FAILED_PRECONDITION
payloads to translate. All state lives on one event loop, so handlers mutate it
between awaits without locks.
"""
from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator
from xml.sax.saxutils import escape

import grpc
from google.api import httpbody_pb2
from google.protobuf import duration_pb2, empty_pb2, field_mask_pb2, timestamp_pb2

from edgedemo import errors, library_pb2, library_pb2_grpc

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_STREAM_DELAY_MS = 10_000
SEED_TIME = "2024-01-15T09:30:00Z"

_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_SHELF = re.compile(r"shelves/([^/]+)")
_BOOK = re.compile(r"shelves/([^/]+)/books/([^/]+)")
_IMMUTABLE_BOOK_FIELDS = frozenset({"name"})
_SHELF_TYPE = "edgedemo.example.com/Shelf"
_BOOK_TYPE = "edgedemo.example.com/Book"

Violation = tuple[str, str]


def _timestamp(text: str) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromJsonString(text)
    return stamp


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


def _seed_books() -> dict[str, list[library_pb2.Book]]:
    G = library_pb2.Genre

    def book(book_id: str, title: str, author: str, pages: int, isbn: str, price: int, genre: int,
             tags: list[str], published: str, read_hours: int) -> library_pb2.Book:
        return library_pb2.Book(
            name=book_id, title=title, author=author, page_count=pages, isbn=isbn, price_cents=price,
            genre=genre, tags=tags, publish_time=_timestamp(published),
            read_duration=duration_pb2.Duration(seconds=read_hours * 3600),
        )

    return {
        "scifi": [
            book("dune", "Dune", "Frank Herbert", 412, "978-0441172719", 1099, G.SCIENCE_FICTION,
                 ["desert", "politics", "classic"], "1965-08-01T00:00:00Z", 14),
            book("neuromancer", "Neuromancer", "William Gibson", 271, "978-0441569595", 999, G.SCIENCE_FICTION,
                 ["cyberpunk", "classic"], "1984-07-01T00:00:00Z", 9),
            book("left-hand-of-darkness", "The Left Hand of Darkness", "Ursula K. Le Guin", 304, "978-0441478125",
                 1199, G.SCIENCE_FICTION, ["anthropology", "classic"], "1969-03-01T00:00:00Z", 10),
            book("earthsea", "A Wizard of Earthsea", "Ursula K. Le Guin", 183, "978-0547773742", 899, G.FANTASY,
                 ["magic", "coming-of-age"], "1968-11-01T00:00:00Z", 6),
        ],
        "history": [
            book("spqr", "SPQR: A History of Ancient Rome", "Mary Beard", 608, "978-1631492228", 1850, G.HISTORY,
                 ["rome", "antiquity"], "2015-10-20T00:00:00Z", 20),
            book("guns-germs-steel", "Guns, Germs, and Steel", "Jared Diamond", 480, "978-0393317558", 1500,
                 G.NON_FICTION, ["civilisation"], "1997-03-01T00:00:00Z", 17),
        ],
        "poetry": [],
    }


_SEED_THEMES = {"scifi": "Science Fiction & Fantasy", "history": "History", "poetry": "Poetry"}


class _Pager:
    """Opaque offset tokens, bound to the listing they came from."""

    def __init__(self, scope: str) -> None:
        self.scope = scope

    def token(self, offset: int) -> str:
        return base64.urlsafe_b64encode(f"{self.scope}:{offset}".encode()).decode().rstrip("=")

    def offset(self, token: str) -> int | None:
        if not token:
            return 0
        try:
            scope, _, offset = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().rpartition(":")
            value = int(offset)
        except (ValueError, UnicodeDecodeError):
            return None
        return value if scope == self.scope and value >= 0 else None


def _page_violations(page_size: int, page_token: str, pager: _Pager) -> list[Violation]:
    problems: list[Violation] = []
    if page_size < 0:
        problems.append(("page_size", f"must not be negative, got {page_size}"))
    if pager.offset(page_token) is None:
        problems.append(("page_token", "is not a token from a previous page of this listing"))
    return problems


def _page(items: list, page_size: int, page_token: str, pager: _Pager) -> tuple[list, str]:
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    start = pager.offset(page_token) or 0
    chunk = items[start:start + size]
    more = start + size < len(items)
    return chunk, pager.token(start + size) if more else ""


def _book_violations(book: library_pb2.Book, prefix: str = "book") -> list[Violation]:
    problems: list[Violation] = []
    if not book.title.strip():
        problems.append((f"{prefix}.title", "is required"))
    if book.page_count < 0:
        problems.append((f"{prefix}.page_count", f"must not be negative, got {book.page_count}"))
    if book.price_cents < 0:
        problems.append((f"{prefix}.price_cents", f"must not be negative, got {book.price_cents}"))
    return problems


def _cover_svg(book: library_pb2.Book) -> bytes:
    title, author = escape(book.title), escape(book.author or "Anonymous")
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="300" height="450" viewBox="0 0 300 450">'
        '<rect width="300" height="450" fill="#1f3a5f"/>'
        '<rect x="15" y="15" width="270" height="420" fill="none" stroke="#e8c872" stroke-width="3"/>'
        f'<text x="150" y="190" font-family="serif" font-size="24" fill="#f5f1e6" text-anchor="middle">{title}</text>'
        f'<text x="150" y="250" font-family="serif" font-size="16" fill="#e8c872" text-anchor="middle">{author}</text>'
        "</svg>"
    ).encode()


class LibraryServicer(library_pb2_grpc.LibraryServiceServicer):
    """Shelves and books in dicts; book ids are unique across shelves."""

    def __init__(self, *, seed: bool = True) -> None:
        self.shelves: dict[str, library_pb2.Shelf] = {}
        self.books: dict[str, library_pb2.Book] = {}  # book id -> book (name holds its shelf)
        self._request_ids: dict[str, str] = {}  # CreateBook request_id -> book id
        self._next_id = 1
        if seed:
            for shelf_id, books in _seed_books().items():
                self.shelves[shelf_id] = library_pb2.Shelf(
                    name=f"shelves/{shelf_id}", theme=_SEED_THEMES[shelf_id], create_time=_timestamp(SEED_TIME)
                )
                for book in books:
                    book.name = f"shelves/{shelf_id}/books/{book.name}"
                    self.books[book.name.rsplit("/", 1)[1]] = book

    # -- lookups that abort with rich errors ------------------------------------------------

    def _new_id(self, prefix: str, taken: dict) -> str:
        while f"{prefix}-{self._next_id}" in taken:
            self._next_id += 1
        new_id = f"{prefix}-{self._next_id}"
        self._next_id += 1
        return new_id

    async def _shelf(self, context: grpc.aio.ServicerContext, name: str, field: str = "name") -> library_pb2.Shelf:
        match = _SHELF.fullmatch(name)
        if not match:
            await errors.invalid_argument(context, (field, f"must look like shelves/{{shelf}}, got {name!r}"))
        shelf = self.shelves.get(match.group(1))
        if shelf is None:
            await errors.not_found(context, _SHELF_TYPE, name)
        return shelf

    async def _book(self, context: grpc.aio.ServicerContext, name: str, field: str = "name") -> library_pb2.Book:
        match = _BOOK.fullmatch(name)
        if not match:
            await errors.invalid_argument(context, (field, f"must look like shelves/{{shelf}}/books/{{book}}, got {name!r}"))
        book = self.books.get(match.group(2))
        if book is None or book.name != name:
            await errors.not_found(context, _BOOK_TYPE, name)
        return book

    def _books_on(self, shelf: library_pb2.Shelf) -> list[library_pb2.Book]:
        prefix = shelf.name + "/books/"
        return [book for book in self.books.values() if book.name.startswith(prefix)]

    async def _writable(self, context: grpc.aio.ServicerContext, shelf: library_pb2.Shelf) -> None:
        if shelf.archived:
            await errors.failed_precondition(
                context, f"{shelf.name} is archived", type="ARCHIVED", subject=shelf.name,
                description="archived shelves accept no new books",
            )

    # -- shelves -------------------------------------------------------------------------------

    async def ListShelves(self, request, context):
        pager = _Pager("shelves")
        if problems := _page_violations(request.page_size, request.page_token, pager):
            await errors.invalid_argument(context, *problems)
        shelves, next_token = _page(list(self.shelves.values()), request.page_size, request.page_token, pager)
        return library_pb2.ListShelvesResponse(shelves=shelves, next_page_token=next_token)

    async def GetShelf(self, request, context):
        return await self._shelf(context, request.name)

    async def CheckShelf(self, request, context):
        await self._shelf(context, request.name)
        return empty_pb2.Empty()

    async def CreateShelf(self, request, context):
        problems: list[Violation] = []
        if not request.shelf.theme.strip():
            problems.append(("shelf.theme", "is required"))
        if request.shelf_id and not _ID.fullmatch(request.shelf_id):
            problems.append(("shelf_id", "must be 1-63 lower-case letters, digits or hyphens"))
        if problems:
            await errors.invalid_argument(context, *problems)
        shelf_id = request.shelf_id or self._new_id("shelf", self.shelves)
        if shelf_id in self.shelves:
            await errors.already_exists(
                context, f"shelves/{shelf_id} already exists", "SHELF_EXISTS", shelf=f"shelves/{shelf_id}"
            )
        shelf = library_pb2.Shelf(name=f"shelves/{shelf_id}", theme=request.shelf.theme, create_time=_now())
        self.shelves[shelf_id] = shelf
        return shelf

    async def DeleteShelf(self, request, context):
        shelf = await self._shelf(context, request.name)
        books = self._books_on(shelf)
        if books and not request.force:
            await errors.failed_precondition(
                context, f"{shelf.name} is not empty", type="NOT_EMPTY", subject=shelf.name,
                description=f"the shelf holds {len(books)} books; delete with force=true to remove them too",
            )
        for book in books:
            del self.books[book.name.rsplit("/", 1)[1]]
        del self.shelves[shelf.name.split("/", 1)[1]]
        return empty_pb2.Empty()

    async def ArchiveShelf(self, request, context):
        shelf = await self._shelf(context, request.name)
        if shelf.archived:
            await errors.failed_precondition(
                context, f"{shelf.name} is already archived", type="ARCHIVED", subject=shelf.name,
                description="a shelf can be archived only once",
            )
        shelf.archived = True
        return shelf

    # -- books ---------------------------------------------------------------------------------

    async def ListBooks(self, request, context):
        pager = _Pager(f"books:{request.parent}:{request.author.lower()}:{request.genre}")
        if problems := _page_violations(request.page_size, request.page_token, pager):
            await errors.invalid_argument(context, *problems)
        shelf = await self._shelf(context, request.parent, "parent")
        books = [
            book for book in self._books_on(shelf)
            if (not request.author or book.author.lower() == request.author.lower())
            and (not request.genre or book.genre == request.genre)
        ]
        page, next_token = _page(books, request.page_size, request.page_token, pager)
        return library_pb2.ListBooksResponse(books=page, next_page_token=next_token)

    async def GetBook(self, request, context):
        if request.name:
            return await self._book(context, request.name)
        if not request.book_id:
            await errors.invalid_argument(context, ("name", "name or book_id is required"))
        book = self.books.get(request.book_id)
        if book is None:
            await errors.not_found(context, _BOOK_TYPE, request.book_id)
        return book

    async def CreateBook(self, request, context):
        if request.request_id and request.request_id in self._request_ids:
            existing = self.books.get(self._request_ids[request.request_id])
            if existing is not None:
                return existing
        shelf = await self._shelf(context, request.parent, "parent")
        problems = _book_violations(request.book)
        if request.book_id and not _ID.fullmatch(request.book_id):
            problems.append(("book_id", "must be 1-63 lower-case letters, digits or hyphens"))
        if problems:
            await errors.invalid_argument(context, *problems)
        await self._writable(context, shelf)
        book_id = request.book_id or self._new_id("book", self.books)
        if book_id in self.books:
            await errors.already_exists(
                context, f"a book with id {book_id!r} already exists", "BOOK_EXISTS",
                book=self.books[book_id].name,
            )
        book = library_pb2.Book()
        book.CopyFrom(request.book)
        book.name = f"{shelf.name}/books/{book_id}"
        self.books[book_id] = book
        if request.request_id:
            self._request_ids[request.request_id] = book_id
        return book

    async def UpdateBook(self, request, context):
        book = await self._book(context, request.book.name, "book.name")
        paths = list(request.update_mask.paths)
        updated = library_pb2.Book()
        if not paths or paths == ["*"]:
            updated.CopyFrom(request.book)
        else:
            problems: list[Violation] = []
            for path in paths:
                if path in _IMMUTABLE_BOOK_FIELDS:
                    problems.append(("update_mask", f"{path!r} cannot be changed"))
                elif not field_mask_pb2.FieldMask(paths=[path]).IsValidForDescriptor(library_pb2.Book.DESCRIPTOR):
                    problems.append(("update_mask", f"{path!r} is not a field of Book"))
            if problems:
                await errors.invalid_argument(context, *problems)
            updated.CopyFrom(book)
            request.update_mask.MergeMessage(
                request.book, updated, replace_message_field=True, replace_repeated_field=True
            )
        updated.name = book.name
        if problems := _book_violations(updated):
            await errors.invalid_argument(context, *problems)
        book.CopyFrom(updated)
        return book

    async def SearchBooks(self, request, context):
        problems: list[Violation] = []
        if not request.q.strip():
            problems.append(("q", "is required"))
        if request.page_size < 0:
            problems.append(("page_size", f"must not be negative, got {request.page_size}"))
        if problems:
            await errors.invalid_argument(context, *problems)
        needle = request.q.strip().lower()
        found = [
            book for book in self.books.values()
            if needle in book.title.lower() or needle in book.author.lower()
            or any(needle in tag.lower() for tag in book.tags)
        ]
        return library_pb2.SearchBooksResponse(books=found[: min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)])

    async def MoveBook(self, request, context):
        book = await self._book(context, request.name)
        if not request.other_shelf_name:
            await errors.invalid_argument(context, ("other_shelf_name", "is required"))
        target = await self._shelf(context, request.other_shelf_name, "other_shelf_name")
        if book.name.startswith(target.name + "/"):
            await errors.invalid_argument(context, ("other_shelf_name", f"the book is already on {target.name}"))
        await self._writable(context, target)
        book.name = f"{target.name}/books/{book.name.rsplit('/', 1)[1]}"
        return book

    async def StreamBooks(self, request, context) -> AsyncIterator[library_pb2.Book]:
        if not 0 <= request.delay_ms <= MAX_STREAM_DELAY_MS:
            await errors.invalid_argument(
                context, ("delay_ms", f"must be between 0 and {MAX_STREAM_DELAY_MS}, got {request.delay_ms}")
            )
        shelf = await self._shelf(context, request.parent, "parent")
        for book in self._books_on(shelf):
            if request.delay_ms:
                await asyncio.sleep(request.delay_ms / 1000)
            yield book

    async def ImportBooks(self, request_iterator, context):
        """All or nothing: one bad message imports none of them."""
        staged: list[tuple[library_pb2.Shelf, library_pb2.Book]] = []
        index = 0
        async for request in request_iterator:
            shelf = await self._shelf(context, request.parent, "parent")
            if problems := _book_violations(request.book, f"requests[{index}].book"):
                await errors.invalid_argument(context, *problems)
            await self._writable(context, shelf)
            staged.append((shelf, request.book))
            index += 1
        names = []
        for shelf, incoming in staged:
            book_id = self._new_id("book", self.books)
            book = library_pb2.Book()
            book.CopyFrom(incoming)
            book.name = f"{shelf.name}/books/{book_id}"
            self.books[book_id] = book
            names.append(book.name)
        return library_pb2.ImportBooksResponse(imported_count=len(names), names=names)

    async def GetBookCover(self, request, context):
        book = await self._book(context, request.name)
        return httpbody_pb2.HttpBody(content_type="image/svg+xml", data=_cover_svg(book))
