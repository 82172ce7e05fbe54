"""The slimmer per-connection HTTP/2 state in edge/http2/connection.py behaves as h2's own.

An idle h2c connection's footprint was mostly deques (h2's Settings keep one per setting,
hpack's dynamic table one more). `CompactSettings` and `_DynamicEntries` replace them with
lists; these tables drive both the stock and the compact objects through the same steps and
require the same observable state after each.
"""
from __future__ import annotations

import hpack
import pytest
from h2.exceptions import InvalidSettingsValueError
from h2.settings import SettingCodes, Settings

from edge.http2.connection import CompactSettings, _DynamicEntries

# (operation, arguments): "set" a value (pending until acknowledged), "ack" the pending ones.
SETTINGS_STEPS = [
    [("set", SettingCodes.INITIAL_WINDOW_SIZE, 0), ("ack",)],
    [("set", SettingCodes.HEADER_TABLE_SIZE, 0), ("set", SettingCodes.HEADER_TABLE_SIZE, 100), ("ack",), ("ack",)],
    [("set", SettingCodes.MAX_CONCURRENT_STREAMS, 5), ("ack",), ("set", SettingCodes.MAX_CONCURRENT_STREAMS, 7)],
    [("set", SettingCodes.MAX_FRAME_SIZE, 32768), ("set", SettingCodes.ENABLE_PUSH, 0), ("ack",)],
    [("set", 0x99, 12), ("ack",)],  # an unknown setting: kept, as h2 keeps it
    [("set", SettingCodes.MAX_HEADER_LIST_SIZE, 1024)],  # never acknowledged: not in force yet
    [],
]


def _observe(settings: Settings) -> dict:
    out = {}
    for key in list(settings):
        try:
            out[key] = settings[key]
        except KeyError:  # set but not acknowledged, never had a value
            out[key] = "pending"
    return out


def _changes(changed: dict) -> dict:
    return {key: (c.setting, c.original_value, c.new_value) for key, c in changed.items()}


@pytest.mark.parametrize("steps", SETTINGS_STEPS)
@pytest.mark.parametrize("client", [True, False])
def test_compact_settings_track_values_and_acknowledgements_as_h2_does(steps, client):
    initial = None if client else {SettingCodes.MAX_CONCURRENT_STREAMS: 100, SettingCodes.INITIAL_WINDOW_SIZE: 262144}
    stock, compact = Settings(client=client, initial_values=initial), CompactSettings(client=client, initial_values=initial)
    assert _observe(compact) == _observe(stock)
    for step in steps:
        if step[0] == "set":
            stock[step[1]] = step[2]
            compact[step[1]] = step[2]
        else:
            assert _changes(compact.acknowledge()) == _changes(stock.acknowledge())
        assert _observe(compact) == _observe(stock)
    assert (compact.max_concurrent_streams, compact.initial_window_size, compact.max_header_list_size) == (
        stock.max_concurrent_streams, stock.initial_window_size, stock.max_header_list_size)


def test_compact_settings_refuse_what_h2_refuses():
    with pytest.raises(InvalidSettingsValueError):
        CompactSettings(client=False)[SettingCodes.INITIAL_WINDOW_SIZE] = 2**31
    with pytest.raises(InvalidSettingsValueError):
        CompactSettings(client=False, initial_values={SettingCodes.MAX_FRAME_SIZE: 10})


def _blocks() -> list[list[tuple[str, str]]]:
    """Header blocks a client with a dynamic table sends: repeats (indexed), growth, evictions."""
    blocks = []
    for n in range(40):
        blocks.append([(":method", "GET"), (":path", f"/v1/items/{n % 7}"), ("authorization", "Bearer " + "t" * 300),
                       ("x-trace", f"{n:032x}"), ("user-agent", "app/1.0")])
    return blocks


@pytest.mark.parametrize("table_size", [4096, 256, 0])
def test_dynamic_table_in_a_list_decodes_what_the_deque_decodes(table_size):
    encoder = hpack.Encoder()
    encoder.header_table_size = table_size
    stock, compact = hpack.Decoder(), hpack.Decoder()
    compact.header_table.dynamic_entries = _DynamicEntries()
    for block in _blocks():
        data = encoder.encode(block)
        assert compact.decode(data, raw=True) == stock.decode(data, raw=True)
        assert list(compact.header_table.dynamic_entries) == list(stock.header_table.dynamic_entries)
    assert len(compact.header_table.dynamic_entries) <= max(1, table_size // 32)
