"""A visit counter and a small JSON store on the app's key-value data
(``wpaas.kv``), and its config (``wpaas.config``).

    POST /visit          counts a visit in bucket ``counter``, atomically; the count
    GET  /visits         the count
    PUT  /json/KEY       stores the body (JSON) under KEY
    GET  /json/KEY       the stored JSON (404 if none)
    DELETE /json/KEY     removes it
    GET  /json           every stored key
    GET  /config?key=K   the config var K

Attach the bucket first: ``wpaas kv:create counter -a APP``.
"""

import json

from wpaas import Response, config, kv

BUCKET = "counter"
JSON_PREFIX = "json:"


def handle(request):
    try:
        return route(request)
    except kv.NoSuchStore:
        return Response(f"attach the bucket first: wpaas kv:create {BUCKET}\n", status=503)
    except kv.KvError as err:
        return Response(f"{err}\n", status=500)


def route(request):
    method, path = request.method, request.path
    if path == "/":
        return Response("python-kv: POST /visit, GET /visits, PUT|GET|DELETE /json/KEY, GET /json, GET /config?key=K\n")
    if path == "/config":
        key = request.args.get("key", "")
        value = config.get(key)
        return Response(f"{key}={value}\n" if value is not None else f"{key} is not set\n")
    bucket = kv.open(BUCKET)
    if (method, path) == ("POST", "/visit"):
        return Response(f"{bucket.increment('visits')}\n")
    if (method, path) == ("GET", "/visits"):
        return Response(f"{bucket.get_text('visits') or 0}\n")
    if (method, path) == ("GET", "/json"):
        keys = [k[len(JSON_PREFIX):] for k in bucket.keys() if k.startswith(JSON_PREFIX)]
        return Response(keys)
    if path.startswith("/json/"):
        key = JSON_PREFIX + path[len("/json/"):]
        if method == "PUT":
            try:
                value = request.json()
            except ValueError:
                return Response("not JSON\n", status=400)
            bucket.set_json(key, value)
            return Response("stored\n")
        if method == "GET":
            if key not in bucket:
                return Response("not found\n", status=404)
            return Response(json.dumps(bucket.get_json(key)), headers={"content-type": "application/json"})
        if method == "DELETE":
            bucket.delete(key)
            return Response("deleted\n")
    return Response("not found\n", status=404)
