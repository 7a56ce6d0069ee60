"""The TensorFlow artefact: a SavedModel directory, written whole through
:func:`tensorweave.io.staged_directory`; ``load`` reads it back."""

from __future__ import annotations

import os
from typing import Any

import tensorflow as tf

from ...errors import ArtefactError
from ...io import is_ours, read_manifest, staged_directory


def export_saved_model(program: Any, path: str, check: Any = None) -> str:
    """Write ``program`` (a :class:`~tensorweave.backends.tensorflow.program.TFProgram`) as a
    SavedModel directory at ``path``: ``tf.saved_model.load(path).fn(*tensors)`` returns the
    output tuple; the ``serving_default`` signature takes the inputs by name and returns a dict by
    output name.

    The model is written into a fresh temporary sibling directory, given tensorweave's manifest
    and swapped in with one rename. ``path`` may be missing, empty or a previous tensorweave
    artefact; anything else (a file, a directory of someone else's files) is refused with an
    :class:`~tensorweave.errors.ArtefactError` before any work, and nothing is deleted.
    ``check(staged_path)`` (optional) runs on the complete staged SavedModel before the swap;
    an exception from it aborts the export and leaves ``path`` as it was."""
    path = os.path.abspath(os.fspath(path))
    settings = {
        "backend": "tensorflow",
        "format": "saved_model",
        "graph": program.graph.name,
        "inputs": list(program.tf_input_names),
        "outputs": list(program.tf_output_names),
    }
    with staged_directory(path, settings, check=check) as tmp:
        module = tf.Module()
        module.fn = program.fn
        module.constants = list(program.variables)
        names, fn = program.tf_output_names, program.fn
        serve = tf.function(
            lambda *xs: dict(zip(names, fn(*xs))), input_signature=program.signature, autograph=False
        )
        tf.saved_model.save(module, tmp, signatures={"serving_default": serve.get_concrete_function()})
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a SavedModel directory is not
    return path


def load(path: str) -> Any:
    """A SavedModel written by ``TFProgram.export``: ``load(path).fn(*arrays)`` returns the output
    tuple, ``load(path).signatures["serving_default"]`` takes the inputs by name. When the
    directory holds tensorweave's manifest every file is checked against it first.

    Safety: a SavedModel is a TensorFlow graph; its ops run with this process's rights (TF's own
    guidance: treat a model as a program). Load only SavedModels you trust."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise ArtefactError(
            f"{path} is not a directory; pass the SavedModel directory TFProgram.export wrote"
        )
    if is_ours(path):
        read_manifest(path, verify=True)
    return tf.saved_model.load(path)
