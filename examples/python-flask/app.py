"""A Flask app, unchanged: wpaas serves its WSGI `app`."""

import os

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/")
def index():
    greeting = os.environ.get("GREETING", "Hello")
    return f"{greeting} from Flask on wpaas!\n"


@app.get("/hello/<name>")
def hello(name):
    return jsonify(hello=name, args=request.args)


@app.post("/echo")
def echo():
    app.logger.warning("echo: %d bytes", len(request.get_data()))
    return jsonify(request.get_json(force=True))
