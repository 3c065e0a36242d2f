"""Runs a WSGI application (PEP 3333) on a :class:`wpaas.Request`."""

import io
import sys
from urllib.parse import unquote

from . import Response


def environ_for(request):
    """The WSGI environ of ``request``."""
    host = request.headers.get("host") or request.authority or "localhost"
    name, _, port = host.partition(":")
    environ = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        # PEP 3333: the path is decoded, then carried as latin-1 "bytes".
        "PATH_INFO": unquote(request.path, "latin-1"),
        "QUERY_STRING": request.query,
        "SERVER_NAME": name,
        "SERVER_PORT": port or ("443" if request.scheme == "https" else "80"),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": request.scheme,
        "wsgi.input": io.BytesIO(request.body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(request.body)),
    }
    for name, value in request.header_list:
        key = name.upper().replace("-", "_")
        if key == "CONTENT_TYPE":
            environ["CONTENT_TYPE"] = value
        elif key != "CONTENT_LENGTH":
            key = "HTTP_" + key
            environ[key] = environ[key] + "," + value if key in environ else value
    return environ


def call(app, request):
    """Calls the WSGI ``app`` with ``request``; returns a :class:`Response`."""
    started = {}
    chunks = []

    def start_response(status, headers, exc_info=None):
        if exc_info and started:
            raise exc_info[1].with_traceback(exc_info[2])
        started["status"] = int(status.split(" ", 1)[0])
        started["headers"] = list(headers)
        return chunks.append

    result = app(environ_for(request), start_response)
    try:
        for chunk in result:
            if chunk:
                chunks.append(chunk)
    finally:
        if hasattr(result, "close"):
            result.close()
    if not started:
        raise RuntimeError("the WSGI app returned without calling start_response")
    return Response(b"".join(chunks), started["status"], started["headers"])
