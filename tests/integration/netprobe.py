"""Traffic for the egress topology tests, run inside a namespace with ``ip netns exec``: an echo server, and
clients that check reachability, send a number of bytes, or hold a connection open and report when it is cut.

Standalone (no reconciler import) so that it starts fast in any namespace.
"""

from __future__ import annotations

import socket
import sys
import threading
import time


def _echo(connection: socket.socket) -> None:
    with connection:
        while data := connection.recv(65536):
            connection.sendall(data)


def serve(port: int) -> None:
    """Echo every byte back, on every address of the namespace (IPv4 and IPv6)."""
    server = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    server.bind(("::", port))
    server.listen(64)
    print("listening", flush=True)
    while True:
        connection, _ = server.accept()
        threading.Thread(target=_echo, args=(connection,), daemon=True).start()


def _connect(host: str, port: int, timeout: float) -> socket.socket:
    return socket.create_connection((host, port), timeout=timeout)


def reach(host: str, port: int) -> None:
    """Exit 0 when an echo comes back within a second."""
    try:
        with _connect(host, port, 1.0) as connection:
            connection.sendall(b"ping")
            sys.exit(0 if connection.recv(4) == b"ping" else 1)
    except OSError as exc:
        print(exc, file=sys.stderr)
        sys.exit(1)


def send(host: str, port: int, size: int) -> None:
    """Send ``size`` bytes and read them back."""
    with _connect(host, port, 5.0) as connection:
        payload = b"x" * size
        connection.sendall(payload)
        received = 0
        while received < size:
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += len(chunk)
    sys.exit(0 if received == size else 1)


def hold(host: str, port: int) -> None:
    """A long-lived connection: a ping every 0.2 s; print 'up' once, 'cut' when an echo stops coming back."""
    with _connect(host, port, 2.0) as connection:
        connection.settimeout(1.0)
        print("up", flush=True)
        while True:
            try:
                connection.sendall(b"p")
                if connection.recv(1) != b"p":
                    raise OSError("closed")
            except OSError:
                print("cut", flush=True)
                return
            time.sleep(0.2)


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "serve":
        serve(int(args[0]))
    elif mode == "reach":
        reach(args[0], int(args[1]))
    elif mode == "send":
        send(args[0], int(args[1]), int(args[2]))
    elif mode == "hold":
        hold(args[0], int(args[1]))
