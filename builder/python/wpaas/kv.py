"""Key-value data: the app's buckets (``wpaas kv:create NAME -a APP``),
through wasi:keyvalue.

::

    from wpaas import kv

    def handle(request):
        bucket = kv.open("counter")
        visits = bucket.increment("visits")   # atomic over every instance
        bucket.set_json("last", {"path": request.path})
        return f"{visits}\\n"

Open buckets inside the handler: the app's top level runs once, when the
component is built, where there is no data. Values are bytes (a ``str`` is
stored as UTF-8). Every failure is a :class:`KvError`: :class:`NoSuchStore`
for a bucket the app has not attached, :class:`AccessDenied`, or the store's
own reason (an over-quota write, a value ``increment`` cannot count).
"""

import json as _json

from componentize_py_types import Err
from wit_world.imports import atomics as _atomics
from wit_world.imports import batch as _batch
from wit_world.imports import wasi_keyvalue_store as _store

__all__ = ["AccessDenied", "Bucket", "KvError", "NoSuchStore", "open"]


class KvError(Exception):
    """A key-value operation failed; ``str(error)`` says why."""


class NoSuchStore(KvError):
    """The bucket is not attached to the app (``wpaas kv:create``)."""


class AccessDenied(KvError):
    """The app may not use the bucket."""


def _error(err):
    value = err.value
    if isinstance(value, _store.Error_NoSuchStore):
        return NoSuchStore("no such bucket")
    if isinstance(value, _store.Error_AccessDenied):
        return AccessDenied("access denied")
    return KvError(value.value)


def _call(fn, *args):
    try:
        return fn(*args)
    except Err as err:
        raise _error(err) from None


def _bytes(value):
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def open(name):
    """The bucket ``name``; raises :class:`NoSuchStore` unless the app has
    attached it. ``open("")`` is the bucket named ``default``."""
    return Bucket(name, _call(_store.open, name))


class Bucket:
    """An open bucket (from :func:`open`)."""

    def __init__(self, name, handle):
        #: The bucket's name.
        self.name = name
        self._handle = handle

    def get(self, key):
        """The value of ``key`` as bytes, or ``None``."""
        return _call(self._handle.get, key)

    def get_text(self, key):
        """The value of ``key`` decoded as UTF-8, or ``None``."""
        value = self.get(key)
        return None if value is None else value.decode("utf-8")

    def get_json(self, key, default=None):
        """The value of ``key`` parsed as JSON, or ``default``."""
        value = self.get(key)
        return default if value is None else _json.loads(value)

    def set(self, key, value):
        """Stores ``value`` (bytes, or a ``str`` as UTF-8) under ``key``."""
        _call(self._handle.set, key, _bytes(value))

    def set_json(self, key, value):
        """Stores ``value`` as JSON under ``key``."""
        self.set(key, _json.dumps(value))

    def delete(self, key):
        """Removes ``key`` (nothing happens if it is not there)."""
        _call(self._handle.delete, key)

    def exists(self, key):
        """Whether ``key`` is there."""
        return _call(self._handle.exists, key)

    def __contains__(self, key):
        return self.exists(key)

    def increment(self, key, delta=1):
        """Adds ``delta`` to the decimal number under ``key`` (absent: 0)
        atomically, over every instance and replica; the new value."""
        return _call(_atomics.increment, self._handle, key, delta)

    def keys(self):
        """Every key, in byte order (all pages)."""
        keys, cursor = [], None
        while True:
            page = _call(self._handle.list_keys, cursor)
            keys.extend(page.keys)
            if page.cursor is None:
                return keys
            cursor = page.cursor

    def get_many(self, keys):
        """``{key: value}`` for those of ``keys`` that are there."""
        found = _call(_batch.get_many, self._handle, list(keys))
        return dict(pair for pair in found if pair is not None)

    def set_many(self, items):
        """Stores every ``key: value`` of the dict ``items``, all or nothing."""
        pairs = [(k, _bytes(v)) for k, v in items.items()]
        _call(_batch.set_many, self._handle, pairs)

    def delete_many(self, keys):
        """Removes every key of ``keys``, all or nothing."""
        _call(_batch.delete_many, self._handle, list(keys))

    def __repr__(self):
        return f"<wpaas.kv.Bucket {self.name!r}>"
