"""The TensorFlow backend: a graph becomes one ``tf.function`` with a symbolic input signature
(spec/backends-tensorflow.md).

Contract (spec/backends.md): ``NAME``, ``LOWERINGS`` (a :class:`~tensorweave.backends.base.Rules`
table covering every registry op; every entry is ``rule(site)``), ``lower(graph, jit_compile=False)
-> TFProgram`` and ``load(path)`` (a SavedModel directory written by ``TFProgram.export``, loaded
with ``tf.saved_model.load``).

Modules: ``rules`` (the rule table and the helpers that keep the reference's semantics),
``program`` (``run_graph``, ``TFProgram``, ``lower``), ``artefact`` (SavedModel export through a
staged directory, and ``load``), ``runtime`` (dtype carriers, cached scalars, the uint32 mask,
static shapes and ``tf_name``, shared by the others).

Symbolic dims are ``None`` in the ``input_signature``, so one concrete function serves every size;
inside, each symbol is read from ``tf.shape`` of an input (``symbol_plan``) and every symbolic
``dim``/``dims`` attribute is computed from those int64 scalars (``resolve_symbolic_attrs``).
uint32 is carried as int64 holding [0, 2**32); results of ops that wrap are masked with
``& 0xFFFFFFFF`` (the signature itself is uint32, so callers see uint32).

Importing the backend sets ``TF_CPP_MIN_LOG_LEVEL=3`` (C++ info, warnings and errors hidden; a real failure still raises in Python) unless the variable is already set.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before tensorflow is imported

from .artefact import load  # noqa: E402
from .program import TFProgram, TFSite, lower, run_graph  # noqa: E402
from .rules import LOWERINGS  # noqa: E402
from .runtime import NAME, tf_name  # noqa: E402

_tf_name = tf_name  # the name tensorweave.export imported before the package split

__all__ = ["LOWERINGS", "NAME", "TFProgram", "TFSite", "load", "lower", "run_graph", "tf_name"]
