"""The segmentation methods: one module each (sec.py, ablations.py, supervised.py, dsrg.py,
retrain.py), found here by the registry. A method is a ``Method`` (cores/methods/base.py): its
loss network, its targets and inputs, its schedule keys with their defaults and checks, its file
names and the rows the quality benchmark measures it by. Everything that names methods derives
from the registry: train_SEC.py/eval.py --stage, the config's keys (cores/config.py) and the
benchmark's rows (bench/quality.py).

A new method is one module: put it in this folder, or anywhere importable and name it in the
environment variable SEC_METHODS (comma-separated module names); it registers itself with
``register``. No method module imports MXNet when it is imported (the config loads them all)."""
import importlib
import os
import pkgutil

from cores.methods.base import Method, MethodError, Row  # noqa: F401  (the interface)

_REGISTRY = {}
_LOADED = []


def register(method):
    """Add ``method`` (a Method instance) to the registry; returns it."""
    if not isinstance(method, Method):
        raise TypeError("register() takes a Method, not %r" % (method,))
    other = _REGISTRY.get(method.name)
    if other is not None and type(other) is not type(method):
        raise MethodError("two methods are named %r: %s and %s" % (
            method.name, type(other).__module__, type(method).__module__))
    _REGISTRY[method.name] = method
    return method


def _load():
    if _LOADED:
        return
    _LOADED.append(True)
    names = ["cores.methods." + m.name for m in pkgutil.iter_modules(__path__)
             if m.name != "base"]
    names += [n.strip() for n in os.environ.get("SEC_METHODS", "").split(",") if n.strip()]
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise MethodError("cannot import the method module %s (SEC_METHODS): %s"
                              % (name, e)) from None


def all_methods():
    """{name: Method} of every registered method, in the order of MethodBase.order then name."""
    _load()
    return dict(sorted(_REGISTRY.items(), key=lambda kv: (kv[1].order, kv[0])))


def get(name):
    """The method called ``name``; an error listing the methods otherwise."""
    methods = all_methods()
    try:
        return methods[name]
    except KeyError:
        raise MethodError("unknown method %r; choose one of %s"
                          % (name, ", ".join(methods))) from None
