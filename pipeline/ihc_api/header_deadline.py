"""A ``requests`` transport whose answers must bring their status line and headers within the read
timeout as a whole: ``HeaderDeadlineAdapter``.

A read timeout bounds each read from the socket, not the answer. A server that sends its headers a byte
at a time, each within the timeout, held a request (and a run) for ever: urllib3's ``Timeout(total=…)``
does not help, as it too is applied to each read. Here a timer shuts the socket down when the headers
are not complete in time; the blocked read returns, and the request fails as a read timeout (which the
client retries). The body has its own bound (``client._read_body``).
"""

from __future__ import annotations

import socket
import threading

import requests.adapters
import urllib3.connection
import urllib3.connectionpool


class _HeadersInTime:
    """Mixed into urllib3's connections: ``getresponse`` (which reads the status line and headers)
    within the connection's read timeout, which urllib3 sets just before it."""

    def getresponse(self):  # type: ignore[no-untyped-def]
        limit, sock = getattr(self, "timeout", None), getattr(self, "sock", None)
        if not isinstance(limit, (int, float)) or limit <= 0 or not isinstance(sock, socket.socket):
            return super().getresponse()  # type: ignore[misc]
        expired = threading.Event()

        def cut() -> None:
            expired.set()
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes the read blocked on it
            except OSError:
                pass

        timer = threading.Timer(limit, cut)
        timer.daemon = True
        timer.start()
        try:
            return super().getresponse()  # type: ignore[misc]
        except BaseException:
            if expired.is_set():  # urllib3 turns a socket timeout into its ReadTimeoutError
                raise TimeoutError(f"the answer's headers were not complete within {limit:g} s") from None
            raise
        finally:
            timer.cancel()


# urllib3's own class names: they appear in its error messages ("HTTPConnectionPool(host=…)")
class HTTPConnection(_HeadersInTime, urllib3.connection.HTTPConnection):
    pass


class HTTPSConnection(_HeadersInTime, urllib3.connection.HTTPSConnection):
    pass


class HTTPConnectionPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = HTTPConnection  # type: ignore[assignment]


class HTTPSConnectionPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = HTTPSConnection  # type: ignore[assignment]


POOLS = {"http": HTTPConnectionPool, "https": HTTPSConnectionPool}


class HeaderDeadlineAdapter(requests.adapters.HTTPAdapter):
    """``requests``' adapter with ``_HeadersInTime`` connections, direct and through a proxy."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(POOLS)

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = dict(POOLS)
        return manager
