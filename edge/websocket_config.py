"""The `websocket` section of the gateway config (edge/protocols/websocket.py serves it).

Kept apart from the adapter because the config module must not import the pipeline
(which imports the config), as with `edge/batch_config.py`.

    websocket:                      # absent or null: no WebSocket (an upgrade is refused with a 404)
      max_message_bytes: 64KiB      # one incoming message; more closes the socket with 1009
      idle_timeout: 60s             # no message either way for this long closes with 1008
      max_duration: 1h              # a socket's whole life; also the backend call's deadline
      send_timeout: 30s             # one reply the client does not take within this ends the socket
      inbound_queue: 8              # request messages read ahead of the backend (then reading stops)
      charge_messages: false        # rate limits: the connection is charged once; true also charges each message
      ping_interval: 20s            # keep-alive PINGs (null: never); unanswered for ping_timeout closes
      ping_timeout: 20s
      per_message_deflate: false    # compress frames (permessage-deflate) when the client offers it

The numbers bound what one socket can make the gateway hold: at most `inbound_queue`
decoded requests plus one message being read, and at most one encoded reply plus the
transport's write buffer (a slow reader stops the reading of the backend's stream, and
gRPC's flow control stops the backend).
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .units import ByteSize, Duration


class WebSocketConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_message_bytes: ByteSize = Field(
        64 * 1024, ge=128, le=64 * 1024 * 1024,
        description="largest incoming message (after decompression); a larger one closes the socket with 1009")
    idle_timeout: Duration = Field(
        60.0, gt=0, description="no message in either direction for this long closes the socket (1008)")
    max_duration: Duration = Field(
        3600.0, gt=0, description="a socket's whole life, and its backend call's deadline (4004 when it passes)")
    send_timeout: Duration = Field(
        30.0, gt=0, description="a reply the client does not read within this ends the socket (a stalled reader)")
    inbound_queue: int = Field(
        8, ge=1, le=1024, description="decoded request messages held for the backend before reading stops")
    charge_messages: bool = Field(
        False, description="rate limits: charge every request message too (the connection is always charged once)")
    ping_interval: Duration | None = Field(
        20.0, gt=0, description="PING an open socket this often (null: never)")
    ping_timeout: Duration = Field(20.0, gt=0, description="a PING unanswered this long closes the socket")
    per_message_deflate: bool = Field(
        False, description="compress frames when the client offers permessage-deflate (CPU and ~100 KiB per socket)")

    @model_validator(mode="after")
    def _idle_within_life(self) -> "WebSocketConfig":
        if self.idle_timeout > self.max_duration:
            raise ValueError("idle_timeout cannot exceed max_duration")
        return self
