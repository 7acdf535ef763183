"""The HTTP seam: fetch one URL from one address, with the URL's host, the ``Host`` header and TLS SNI all the
name the edges serve (the connection is pinned to the address without patching name resolution anywhere), timing
the headers and the whole body. httpx, asynchronously, with one client and its connection limit per caller."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

import httpx

from reconciler.model.values import format_host_port, host_and_port
from reconciler.system.clock import Clock


@dataclass(frozen=True, slots=True)
class Fetched:
    status: int
    sha256: str
    md5: str
    headers_seconds: float
    seconds: float  # to the end of the body


class NoConnectionError(OSError):
    """No connection to the address (refused, unreachable, connect timeout): worth another try."""


class HttpFetcher(Protocol):
    async def fetch(self, url: str, address: str, *, host: str, timeout: float, verify: bool) -> Fetched:
        """GET ``url`` from ``address``; NoConnectionError when no connection was made, TimeoutError past
        ``timeout``, OSError for anything else that went wrong on the way."""
        ...


class HttpxFetcher:
    def __init__(self, clock: Clock, *, connections: int = 100) -> None:
        self.clock = clock
        self.limits = httpx.Limits(max_connections=connections, max_keepalive_connections=0)
        self.clients: dict[bool, httpx.AsyncClient] = {}

    def _client(self, verify: bool) -> httpx.AsyncClient:
        client = self.clients.get(verify)
        if client is None:
            client = self.clients[verify] = httpx.AsyncClient(verify=verify, limits=self.limits, trust_env=False)
        return client

    async def fetch(self, url: str, address: str, *, host: str, timeout: float, verify: bool) -> Fetched:
        parsed = httpx.URL(url)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        target, _ = host_and_port(format_host_port(address, port))
        pinned = parsed.copy_with(host=target)
        client = self._client(verify)  # made before the clock starts: a new client loads its TLS context (~0.1 s)
        started = self.clock.monotonic()
        request = client.build_request(
            "GET",
            pinned,
            headers={"Host": host if parsed.port is None else f"{host}:{port}"},
            extensions={"sni_hostname": host, "timeout": httpx.Timeout(timeout).as_dict()},
        )
        try:
            response = await client.send(request, stream=True)
            headers = self.clock.monotonic() - started
            sha256, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
            async for chunk in response.aiter_bytes():
                sha256.update(chunk)
                md5.update(chunk)
            await response.aclose()
        except httpx.ConnectTimeout as exc:
            raise NoConnectionError(f"connect to {address} timed out") from exc
        except httpx.ConnectError as exc:
            raise NoConnectionError(f"cannot connect to {address}: {exc}") from exc
        except httpx.TimeoutException as exc:
            raise TimeoutError(f"{address} did not answer within {timeout:g}s") from exc
        except httpx.HTTPError as exc:
            raise OSError(f"{address}: {exc}") from exc
        return Fetched(
            response.status_code, sha256.hexdigest(), md5.hexdigest(), headers, self.clock.monotonic() - started
        )

    async def close(self) -> None:
        for client in self.clients.values():
            await client.aclose()
        self.clients.clear()
