"""wpaas: Python apps on wpaas, a component per request.

An app's ``app.py`` defines either

* ``handle(request)`` returning a :class:`Response` (or ``str``/``bytes``), or
* a WSGI callable named ``app`` or ``application`` (Flask, Bottle, …),
  which runs unchanged through :mod:`wpaas.wsgi`.

Config vars are in ``os.environ`` (and :mod:`wpaas.config`); what is
printed goes to the app's logs; :mod:`wpaas.kv` holds the app's key-value
data.
"""

import json as _json

__all__ = ["Request", "Response"]


class Request:
    """An incoming HTTP request, body read in full."""

    def __init__(self, method, path, query, headers, body, scheme="http", authority=""):
        #: ``GET``, ``POST``, …
        self.method = method
        #: The path, without the query string (``/hello``).
        self.path = path
        #: The raw query string, without ``?`` (may be empty).
        self.query = query
        #: ``[(name, value)]`` as received; names lower-case.
        self.header_list = headers
        #: The body as bytes.
        self.body = body
        self.scheme = scheme
        self.authority = authority

    @property
    def headers(self):
        """Headers as a dict, lower-case names (repeated ones joined with ``, ``)."""
        out = {}
        for name, value in self.header_list:
            out[name] = out[name] + ", " + value if name in out else value
        return out

    @property
    def args(self):
        """The query string parsed into a dict of first values."""
        from urllib.parse import parse_qs

        return {k: v[0] for k, v in parse_qs(self.query).items()}

    def text(self):
        """The body decoded as UTF-8."""
        return self.body.decode("utf-8", "replace")

    def json(self):
        """The body parsed as JSON."""
        return _json.loads(self.body or b"null")


class Response:
    """An HTTP response. A ``str`` body is sent as UTF-8 ``text/plain``
    unless a ``content-type`` header says otherwise; a ``dict``/``list``
    body is sent as JSON."""

    def __init__(self, body=b"", status=200, headers=None):
        self.status = int(status)
        self.headers = list((headers or {}).items()) if isinstance(headers, dict) else list(headers or [])
        has_type = any(k.lower() == "content-type" for k, _ in self.headers)
        if isinstance(body, (dict, list)):
            body = _json.dumps(body)
            if not has_type:
                self.headers.append(("content-type", "application/json"))
                has_type = True
        if isinstance(body, str):
            body = body.encode("utf-8")
            if not has_type:
                self.headers.append(("content-type", "text/plain; charset=utf-8"))
        self.body = bytes(body)
