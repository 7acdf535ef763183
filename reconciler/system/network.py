"""The network seam for active checks: connect to an address, optionally send and read an answer, with a timeout."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol


class Connector(Protocol):
    async def exchange(self, host: str, port: int, *, send: bytes | None, expect: int, timeout: float) -> bytes:
        """Connect, send ``send`` (if any), read exactly ``expect`` bytes (0: none) and close.

        Raises OSError (refused, reset, closed early) or TimeoutError."""
        ...


class TcpConnector:
    async def exchange(self, host: str, port: int, *, send: bytes | None, expect: int, timeout: float) -> bytes:
        async def attempt() -> bytes:
            reader, writer = await asyncio.open_connection(host, port)
            try:
                if send:
                    writer.write(send)
                    await writer.drain()
                return await reader.readexactly(expect) if expect else b""
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

        try:
            return await asyncio.wait_for(attempt(), timeout)
        except asyncio.IncompleteReadError as exc:
            raise OSError("closed before the expected answer") from exc
