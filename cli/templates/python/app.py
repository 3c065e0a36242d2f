"""{{name}}: a Python app on wpaas.

`handle(request)` answers every request: `request.method`, `.path`,
`.query`, `.args`, `.headers`, `.body`, `.text()`, `.json()`; return a
`Response(body, status=200, headers={})`, a str or bytes. Config vars are
in os.environ; print() goes to `wpaas logs`. A WSGI app named `app`
(Flask, Bottle…) works too, in place of `handle`.
"""

import os

from wpaas import Response


def handle(request):
    print(f"{request.method} {request.path}")
    greeting = os.environ.get("GREETING", "Hello")
    return Response(f"{greeting} from {{name}}! ({request.method} {request.path})\n")
