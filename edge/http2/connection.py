"""The `h2` connection object as the gateway runs it: its limits in force from the first
frame, a view of what it is still buffering, and lighter per-connection state.

h2 applies our SETTINGS only once the client acknowledges them and checks a frame's
length only once the whole frame is buffered; `new_connection` and
`buffered_input_too_large` close those gaps. The compact classes below keep h2's
behaviour with less memory and CPU per connection (idle connections are what a mobile
edge holds most of; tests/test_http2_compact_state.py checks them against h2's own).
"""
from __future__ import annotations

from typing import Any, Callable

import h2.config
import h2.connection
import h2.settings
from hpack.table import HeaderTable

from .limits import Http2Limits

__all__ = ["CompactSettings", "PlainHeaderEncoder", "buffered_input_too_large", "input_incomplete", "new_connection"]


def new_connection(limits: Http2Limits) -> h2.connection.H2Connection:
    """A server-side connection with our settings sent (the preface is queued in its output)."""
    cfg = h2.config.H2Configuration(
        client_side=False, header_encoding=None, validate_inbound_headers=True,
        normalize_inbound_headers=True, validate_outbound_headers=False, normalize_outbound_headers=False)
    conn = h2.connection.H2Connection(cfg)
    conn.encoder = PlainHeaderEncoder()
    # In force from the first frame (h2 would otherwise apply them only once the client acknowledges).
    conn.remote_settings = CompactSettings(client=True)  # the client's: RFC 9113 defaults until it says
    conn.local_settings = CompactSettings(client=False, initial_values={
        h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: limits.max_concurrent_streams,
        h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: limits.hard_header_limit,
        h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: limits.stream_window,
        h2.settings.SettingCodes.MAX_FRAME_SIZE: limits.max_frame_size,
        h2.settings.SettingCodes.ENABLE_PUSH: 0,
    })
    conn.decoder.max_header_list_size = limits.hard_header_limit
    conn.decoder.header_table.dynamic_entries = _DynamicEntries()
    conn._frame_dispatch_table = _FrameDispatch(conn)
    conn.max_inbound_frame_size = limits.max_frame_size
    conn.initiate_connection()
    if limits.connection_window > 65535:
        conn.increment_flow_control_window(limits.connection_window - 65535)
    return conn


def buffered_input_too_large(conn: h2.connection.H2Connection, limits: Http2Limits) -> bool:
    """A frame announced over the frame size, or a header block over the hard limit, still arriving.

    h2 checks a frame's length only once the whole frame is buffered, and joins CONTINUATION frames
    (up to 64) before decoding; both would let one connection park megabytes here.
    """
    buffer = getattr(conn, "incoming_buffer", None)
    pending = getattr(buffer, "_data", b"")
    if len(pending) >= 9 and int.from_bytes(pending[:3], "big") > limits.max_frame_size:
        return True
    blocks = getattr(buffer, "_headers_buffer", ())
    return bool(blocks) and sum(len(f.data) for f in blocks) > limits.hard_header_limit


def input_incomplete(conn: h2.connection.H2Connection) -> bool:
    """Whether a frame or header block (or the preface) has begun to arrive and not ended."""
    buffer = getattr(conn, "incoming_buffer", None)
    return bool(getattr(buffer, "_data", b"")) or bool(getattr(buffer, "_headers_buffer", ())) \
        or bool(getattr(buffer, "_preamble_len", 0))


def _hpack_int(value: int, prefix_bits: int, first: int) -> bytes:
    """RFC 7541 5.1 integer with an N-bit prefix; `first` holds the representation's flag bits."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class PlainHeaderEncoder:
    """HPACK for responses without the dynamic table and without Huffman coding.

    hpack's Encoder searches and grows the dynamic table for every header of every
    response (x-request-id and date never repeat, so that work buys nothing) and
    Huffman-codes each string in Python: measured at ~45 us per response. This one
    uses the static table for names (and the few full matches) and writes everything
    else as a literal "without indexing": a few microseconds. Its first block (and
    the first after the peer changes SETTINGS_HEADER_TABLE_SIZE) starts with a
    table-size update to 0, so it never has to track a table the peer may shrink.
    """

    __slots__ = ("_size_update",)

    # The static table's encodings, shared by every connection: full matches, then names.
    _full: dict[tuple[bytes, bytes], bytes] = {}
    _names: dict[bytes, bytes] = {}
    for _index, (_name, _value) in enumerate(HeaderTable.STATIC_TABLE, start=1):
        _full.setdefault((_name, _value), _hpack_int(_index, 7, 0x80))
        _names.setdefault(_name, _hpack_int(_index, 4, 0x00))
    del _index, _name, _value

    def __init__(self) -> None:
        self._size_update = True

    @property
    def header_table_size(self) -> int:
        return 0

    @header_table_size.setter
    def header_table_size(self, value: int) -> None:
        self._size_update = True

    def encode(self, headers: Any, huffman: bool = True) -> bytes:
        out = [b"\x20"] if self._size_update else []  # dynamic table size update: 0
        self._size_update = False
        full, names = self._full, self._names
        for header in headers:
            name, value = header[0], header[1]
            indexed = full.get((name, value))
            if indexed is not None:
                out.append(indexed)
                continue
            prefix = names.get(name)
            if prefix is None:
                out.append(b"\x00")
                out.append(_hpack_int(len(name), 7, 0) + name)
            else:
                out.append(prefix)
            out.append(_hpack_int(len(value), 7, 0) + value)
        return b"".join(out)


class _Values(list):
    """A setting's current value and the values waiting for acknowledgement.

    h2 keeps these in `collections.deque`s: an empty-ish deque costs ~760 bytes (one
    64-slot block), and a connection has ~13 of them (local and remote settings), most of
    an idle h2c connection's footprint. A one- or two-item list does the same job here.
    """

    __slots__ = ()

    def popleft(self) -> int | None:
        return self.pop(0)


class _DynamicEntries(list):
    """hpack's dynamic table entries in a list (newest first) instead of a 760-byte deque.

    At most SETTINGS_HEADER_TABLE_SIZE / 32 entries (128 at the default 4 KiB), so
    inserting at the front costs nothing that matters, and most clients' tables stay small.
    """

    __slots__ = ()

    def appendleft(self, entry: tuple[bytes, bytes]) -> None:
        self.insert(0, entry)


_SETTLED: dict[int, tuple[int]] = {}  # one shared `(value,)` per value: what most settings stay at


class CompactSettings(h2.settings.Settings):
    """h2's Settings without a deque per setting; same values, same validation.

    A setting with nothing pending is a shared one-item tuple (h2 reads `[0]` and `len`);
    a write turns it into a `_Values` list, which acknowledge() pops as it pops a deque.
    """

    def __init__(self, client: bool = True, initial_values: dict | None = None) -> None:
        super().__init__(client=client, initial_values=initial_values)
        self._settings = {key: _SETTLED.setdefault(values[0], (values[0],)) for key, values in self._settings.items()}

    def __setitem__(self, key: Any, value: int) -> None:
        current = self._settings.get(key)
        if current is not None and type(current) is not _Values:
            self._settings[key] = _Values(current)
        super().__setitem__(key, value)  # validates; a new key gets a deque([None, value])
        if type(self._settings[key]) is not _Values:
            self._settings[key] = _Values(self._settings[key])


class _FrameDispatch:
    """h2's frame-type -> handler table, bound on lookup instead of a dict of a dozen bound
    methods built per connection (~1.2 KB each)."""

    __slots__ = ("_conn",)
    _names = {kind: handler.__name__ for kind, handler in
              h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))._frame_dispatch_table.items()}

    def __init__(self, conn: h2.connection.H2Connection) -> None:
        self._conn = conn

    def __getitem__(self, kind: type) -> Callable[..., Any]:
        return getattr(self._conn, self._names[kind])
