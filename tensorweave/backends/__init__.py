"""Backends: numpy (reference), torch, tensorflow, jax, onnx. Frameworks are imported lazily."""

from .registry import ALL, ORDER, available, get, is_installed, lower, resolve, use_backend

__all__ = ["ALL", "ORDER", "available", "get", "is_installed", "lower", "resolve", "use_backend"]
