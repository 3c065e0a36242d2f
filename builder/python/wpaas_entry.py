"""The component's entry module (written by the wpaas Python buildpack):
imports the app, then serves each request with its ``handle`` or WSGI app."""

import importlib

from wit_world import exports

import wpaas._serve
import wpaas.wsgi

_app = importlib.import_module("__WPAAS_APP_MODULE__")

if callable(getattr(_app, "handle", None)):
    _handler = _app.handle
else:
    _wsgi = getattr(_app, "app", None) or getattr(_app, "application", None)
    if not callable(_wsgi):
        raise SystemExit(
            "__WPAAS_APP_MODULE__.py must define handle(request) or a WSGI app named `app` or `application`"
        )

    def _handler(request):
        return wpaas.wsgi.call(_wsgi, request)


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request, response_out):
        wpaas._serve.serve(_handler, request, response_out)
