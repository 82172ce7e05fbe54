"""Raw-socket HTTP/1.1 for tests that must send what httpx would normalise or refuse."""
from __future__ import annotations

import json
import socket
from typing import Any


def connect(gw: Any, timeout: float = 5.0) -> socket.socket:
    """A TCP connection to a RunningGateway's public listener."""
    return socket.create_connection(("127.0.0.1", gw.server.public.port), timeout=timeout)


def read_all(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Everything until the server closes (or `timeout` passes: then b'<open>' is appended)."""
    sock.settimeout(timeout)
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except socket.timeout:
        return out + b"<open>"
    except ConnectionResetError:
        pass
    return out


def responses(raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Split a byte stream of HTTP/1.1 responses (content-length framed) into (status, headers, body)."""
    out = []
    while raw.startswith(b"HTTP/1.1 "):
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        out.append((int(lines[0].split()[1]), headers, rest[:length]))
        raw = rest[length:]
    return out


def exchange(gw: Any, data: bytes, timeout: float = 5.0, expect: int | None = None) -> list[tuple[int, dict[str, str], bytes]]:
    """Send `data`; the responses until the server closes, or until `expect` whole responses arrived."""
    with connect(gw, timeout) as sock:
        sock.sendall(data)
        if expect is None:
            return responses(read_all(sock, timeout))
        sock.settimeout(timeout)
        raw = b""
        while len(answers := responses(raw)) < expect or _partial(raw, answers):
            chunk = sock.recv(65536)
            if not chunk:
                break
            raw += chunk
        return responses(raw)


def _partial(raw: bytes, answers: list) -> bool:
    """Is the last parsed response still missing body bytes?"""
    if not answers:
        return False
    return len(b"".join(a[2] for a in answers)) < sum(int(a[1].get("content-length", 0)) for a in answers)


def status_json(response: tuple[int, dict[str, str], bytes]) -> dict:
    status, headers, body = response
    assert headers["content-type"] == "application/json", response
    parsed = json.loads(body)
    assert set(parsed) == {"code", "message", "details"} and parsed["message"], parsed
    return parsed
