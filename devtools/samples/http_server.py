"""Threaded local HTTP file server with HEAD and single byte-range support, enough for aria2c to split and resume."""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO

logger = logging.getLogger(__name__)

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_COPY_CHUNK = 1 << 20


class RangeNotSatisfiable(Exception):
    """The Range header asks for bytes the file does not have."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Turn a `Range` header into an inclusive (first, last) byte pair.

    Args:
        header: The header value, e.g. `bytes=0-99`, `bytes=100-` or `bytes=-50`.
        size: Size of the file in bytes.

    Returns:
        The inclusive byte range, or None to serve the whole file (no header, several ranges or a
        syntax the server does not handle; RFC 9110 lets a server ignore Range).

    Raises:
        RangeNotSatisfiable: If the range starts at or beyond the end of the file.
    """
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match or match.group(1) == match.group(2) == "":
        return None
    first, last = match.groups()
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(size - suffix, 0), size - 1
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if start >= size or start > end:
        raise RangeNotSatisfiable
    return start, end


class RangeRequestHandler(SimpleHTTPRequestHandler):
    """`SimpleHTTPRequestHandler` plus `Accept-Ranges`, 206 partial content and 416 responses."""

    protocol_version = "HTTP/1.1"

    def __init__(self, *args, **kwargs) -> None:
        self._range: tuple[int, int] | None = None
        super().__init__(*args, **kwargs)

    def send_head(self) -> BinaryIO | None:
        """Send the status line and headers; return the open file for GET to copy, or None."""
        self._range = None
        path = self.translate_path(self.path)
        if os.path.isdir(path):
            return super().send_head()
        try:
            handle = open(path, "rb")  # noqa: SIM115 - the base class closes it after copying
        except OSError:
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")
            return None
        try:
            stat = os.fstat(handle.fileno())
            size = stat.st_size
            try:
                self._range = parse_range(self.headers.get("Range"), size)
            except RangeNotSatisfiable:
                handle.close()
                self._send_unsatisfiable(size)
                return None
            self._send_file_headers(size, stat.st_mtime)
            return handle
        except Exception:
            handle.close()
            raise

    def _send_unsatisfiable(self, size: int) -> None:
        self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
        self.send_header("Content-Range", f"bytes */{size}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send_file_headers(self, size: int, mtime: float) -> None:
        if self._range is None:
            self.send_response(HTTPStatus.OK)
            length = size
        else:
            first, last = self._range
            self.send_response(HTTPStatus.PARTIAL_CONTENT)
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
            length = last - first + 1
        self.send_header("Content-Type", self.guess_type(self.translate_path(self.path)))
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Last-Modified", self.date_time_string(int(mtime)))
        self.end_headers()

    def copyfile(self, source, outputfile) -> None:
        """Copy the requested bytes; a client closing early (aria2c re-splitting) is not an error."""
        try:
            if self._range is None:
                shutil.copyfileobj(source, outputfile, _COPY_CHUNK)
                return
            first, last = self._range
            source.seek(first)
            remaining = last - first + 1
            while remaining > 0:
                chunk = source.read(min(_COPY_CHUNK, remaining))
                if not chunk:
                    break
                outputfile.write(chunk)
                remaining -= len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - signature of the base class
        logger.debug("%s - %s", self.address_string(), format % args)


@contextmanager
def serving(server: ThreadingHTTPServer, thread_name: str, path: str = "") -> Iterator[str]:
    """``server`` answering in a background thread for the duration of the block; shut down and closed after.

    Yields:
        Its base URL, e.g. `http://127.0.0.1:54321`, followed by ``path``.
    """
    thread = threading.Thread(target=server.serve_forever, name=thread_name, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}{path}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextmanager
def serve_directory(
    directory: str | os.PathLike[str],
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    handler_class: type[RangeRequestHandler] = RangeRequestHandler,
) -> Iterator[str]:
    """Serve `directory` over HTTP in a background thread for the duration of the block.

    Args:
        directory: Folder whose files are served.
        host: Address to bind.
        port: Port to bind; 0 picks a free one.
        handler_class: Request handler, replaceable by tests that need a misbehaving server.

    Yields:
        The base URL, e.g. `http://127.0.0.1:54321`, without a trailing slash.
    """
    with serving(_make_server(directory, host, port, handler_class), "serve-directory") as url:
        yield url


def _make_server(
    directory: str | os.PathLike[str],
    host: str,
    port: int,
    handler_class: type[RangeRequestHandler] = RangeRequestHandler,
) -> ThreadingHTTPServer:
    root = Path(directory)
    if not root.is_dir():
        raise NotADirectoryError(f"not a directory: {root}")
    handler = partial(handler_class, directory=str(root))
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def serve_until_interrupted(server: ThreadingHTTPServer, what: str, path: str) -> None:
    """Serve until Ctrl-C, having logged ``<what>http://<host>:<port><path>``; the socket is closed afterwards."""
    host, port = server.server_address[:2]
    logger.info("serving %shttp://%s:%s%s (Ctrl-C to stop)", what, host, port, path)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m devtools.samples.http_server --dir D --port 8000`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="folder to serve")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    serve_until_interrupted(_make_server(args.dir, args.host, args.port), f"{args.dir.resolve()} at ", "/")


if __name__ == "__main__":
    main()
