"""A wpaas Python app: `handle(request)` returns a `Response`.

Config vars are environment variables; what is printed goes to the app's
logs (`wpaas logs`).
"""

import os

from wpaas import Response


def handle(request):
    print(f"python-hello: {request.method} {request.path} {request.query}".rstrip())
    if request.path != "/":
        return Response("not found\n", status=404)
    who = request.args.get("who", "world")
    greeting = os.environ.get("GREETING", "Hello")
    dyno = os.environ.get("DYNO", "?")
    return Response(f"{greeting}, {who}, from Python! dyno={dyno}\n")
