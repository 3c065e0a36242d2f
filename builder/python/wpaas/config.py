"""The app's config vars through wasi:config (``wpaas config:set``): the
same values as ``os.environ``, without the platform's ``DYNO``.

::

    from wpaas import config

    greeting = config.get("GREETING", "Hello")
    everything = config.get_all()    # {name: value}

Read them inside the handler: the app's top level runs once, when the
component is built.
"""

from componentize_py_types import Err
from wit_world.imports import wasi_config_store as _store

__all__ = ["ConfigError", "get", "get_all"]


class ConfigError(Exception):
    """The config could not be read; ``str(error)`` says why."""


def _call(fn, *args):
    try:
        return fn(*args)
    except Err as err:
        raise ConfigError(err.value.value) from None


def get(key, default=None):
    """The config var ``key``, or ``default``."""
    value = _call(_store.get, key)
    return default if value is None else value


def get_all():
    """Every config var, as a dict."""
    return dict(_call(_store.get_all))
