"""A tiny HTTP/1.1 server whose behaviour is known exactly, for checking the load generator.

It answers every request after `delay_s`, counts what it received, can stall every answer
until a given moment (to provoke coordinated omission), answers `/status/NNN` with that
status, `/wrong-body` with an unexpected body and `/chunked` with a chunked body. It runs on
its own event loop in a background thread of the test process; the generator under test
runs in other processes.
"""

from __future__ import annotations

import asyncio
import threading
import time


class KnownServer:
    """Start on construction; `close()` when done (or use as a context manager)."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.count = 0
        self.abandoned = 0  # requests whose client closed the connection before the answer
        self.handling = 0  # requests received and not yet answered or abandoned
        self.stall_until = 0.0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("known server did not start")

    def stall(self, seconds: float) -> None:
        """Hold every answer (pending or new) until `seconds` from now."""
        self.stall_until = time.monotonic() + seconds

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]

        self._loop.run_until_complete(start())
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                if length:
                    await reader.readexactly(length)
                self.count += 1
                self.handling += 1
                try:
                    path = head.split(b" ")[1].decode()
                    if self.delay_s:
                        await asyncio.sleep(self.delay_s)
                    while (wait := self.stall_until - time.monotonic()) > 0:
                        await asyncio.sleep(wait)
                    if reader.at_eof() or writer.transport.is_closing():  # the client left
                        self.abandoned += 1
                        return
                    writer.write(self._answer(path))
                finally:
                    self.handling -= 1
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    @staticmethod
    def _answer(path: str) -> bytes:
        if path.startswith("/status/"):
            status = int(path.rsplit("/", 1)[1])
            return b"HTTP/1.1 %d Whatever\r\nContent-Length: 2\r\n\r\n{}" % status
        if path == "/chunked":
            return (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b'5\r\n{"id"\r\n4\r\n: 7}\r\n0\r\n\r\n'
            )
        body = b'{"surprise": true}' if path == "/wrong-body" else b'{"id": 1, "ok": true}'
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Return once no request is being handled (answered or found abandoned)."""
        deadline = time.monotonic() + timeout
        while self.handling:
            assert time.monotonic() < deadline, f"{self.handling} requests still handled"
            time.sleep(0.01)  # polling the server's thread

    def close(self) -> None:
        """Stop serving and end the thread."""

        async def shutdown() -> None:
            self._server.close()
            handlers = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in handlers:
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)
            self._loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop)
        self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> KnownServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
