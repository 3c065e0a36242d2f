"""The bridge between wasi:http and the SDK: a request in, a response out."""

# Only modules imported while the component is built (componentize-py
# snapshots the interpreter then) exist when it serves: these are imported
# lazily by common libraries at request time (werkzeug encodes the host
# name with the idna codec, for one).
import encodings.ascii  # noqa: F401
import encodings.idna  # noqa: F401
import encodings.latin_1  # noqa: F401
import encodings.punycode  # noqa: F401
import encodings.utf_8  # noqa: F401
import sys
import traceback

from componentize_py_types import Err, Ok
from wit_world.imports import types
from wit_world.imports.streams import StreamError_Closed

from . import Request, Response

# Headers the host refuses to take from a guest (hop-by-hop or its own).
_FORBIDDEN = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "host", "http2-settings"}
# wasi:io output streams take at most 4096 bytes per blocking write.
_CHUNK = 4096


def _method(method):
    if isinstance(method, types.Method_Other):
        return method.value
    return type(method).__name__[len("Method_"):].upper()


def read_request(incoming):
    """A :class:`Request` for the wasi:http ``incoming``, body read in full."""
    path_query = incoming.path_with_query() or "/"
    path, _, query = path_query.partition("?")
    headers = [(k.lower(), v.decode("latin-1")) for k, v in incoming.headers().entries()]
    scheme = incoming.scheme()
    scheme = "https" if isinstance(scheme, types.Scheme_Https) else "http"
    chunks = []
    with incoming.consume() as body:
        with body.stream() as stream:
            while True:
                try:
                    chunks.append(stream.blocking_read(65536))
                except Err as e:
                    if isinstance(e.value, StreamError_Closed):
                        break
                    raise
    return Request(_method(incoming.method()), path, query, headers, b"".join(chunks), scheme, incoming.authority() or "")


def write_response(response, response_out):
    """Sends ``response`` through ``response_out``."""
    entries = [(k, v.encode("latin-1")) for k, v in response.headers if k.lower() not in _FORBIDDEN]
    outgoing = types.OutgoingResponse(types.Fields.from_list(entries))
    outgoing.set_status_code(response.status)
    body = outgoing.body()
    types.ResponseOutparam.set(response_out, Ok(outgoing))
    with body.write() as stream:
        data = response.body
        for start in range(0, len(data), _CHUNK):
            stream.blocking_write_and_flush(data[start : start + _CHUNK])
    types.OutgoingBody.finish(body, None)


def serve(handler, incoming, response_out):
    """Runs ``handler`` (``Request -> Response``) for one request; an
    exception is logged with its traceback and answered with a 500."""
    try:
        try:
            response = handler(read_request(incoming))
            if not isinstance(response, Response):
                response = Response(response if response is not None else b"")
        except Exception:
            traceback.print_exc()
            response = Response("Internal Server Error\n", 500)
        write_response(response, response_out)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
