"""The registry of laws. A module in this package that defines a Law and
decorates it with @register is found automatically: adding a law is one file."""

from __future__ import annotations

import importlib
import pkgutil

from .base import Law

_LAWS: dict[str, type[Law]] = {}
_NOT_LAWS = {"base", "registry", "capacity_solver", "components"}


def register(cls: type[Law]) -> type[Law]:
    """Class decorator: make a law available by its ``name``."""
    if cls.name in _LAWS and _LAWS[cls.name] is not cls:
        raise ValueError(f"two laws are named {cls.name!r}")
    _LAWS[cls.name] = cls
    return cls


def _discover() -> None:
    package = importlib.import_module(__package__)
    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in _NOT_LAWS and not info.name.startswith("_"):
            importlib.import_module(f"{__package__}.{info.name}")


def get_law(name: str) -> Law:
    """Return an instance of the law registered as ``name``."""
    _discover()
    if name not in _LAWS:
        raise ValueError(f"unknown law {name!r}; available: {', '.join(available_laws())}")
    return _LAWS[name]()


def available_laws() -> list[str]:
    """Names of every registered law, sorted."""
    _discover()
    return sorted(_LAWS)
