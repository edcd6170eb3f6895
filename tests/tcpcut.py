"""A TCP relay on loopback that a test can cut and mend: the network path between newswatch and
its PostgreSQL server, so that a test makes the database stop answering for one node without
touching the server the other tests share.

``with TcpCut(("127.0.0.1", 5432)) as relay:`` listens on ``relay.port`` and relays every
connection to the target. ``relay.cut()`` closes every relayed connection and refuses new ones
(as a server that went away); ``relay.mend()`` accepts them again.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Self


class TcpCut:
    def __init__(self, target: tuple[str, int], host: str = "127.0.0.1") -> None:
        self.target = target
        self.listener = socket.create_server((host, 0))
        self.port = self.listener.getsockname()[1]
        self.open = threading.Event()
        self.open.set()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self.listener.close()
        self._close_all()
        self._thread.join(timeout=5)

    def cut(self) -> None:
        self.open.clear()
        self._close_all()

    def mend(self) -> None:
        self.open.set()

    def _close_all(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        self.listener.settimeout(0.2)
        while not self._done.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self.open.is_set():
                client.close()  # refused: the database does not answer
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
