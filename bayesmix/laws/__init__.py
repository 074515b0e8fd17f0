"""Data-mixing laws. One module per law; see base.py for what a law is."""

from .base import Inputs, Law, Param
from .registry import available_laws, get_law, register

__all__ = ["Inputs", "Law", "Param", "available_laws", "get_law", "register"]
