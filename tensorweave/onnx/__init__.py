"""``tensorweave.onnx``: Hugging Face's ONNX-config API, describing signatures once for every target.

The configs and ``FeaturesManager`` are written once in ``tensorweave.frontends.onnx``; ``export`` and
``validate_model_outputs`` come from ``tensorweave.export``. This package adds what needs the public
layer: the loader classes behind ``FeaturesManager._TASKS_TO_AUTOMODELS`` /
``get_model_class_for_feature`` / ``get_model_from_feature`` (each ``from_pretrained(path_or_name)``
returns a tensorweave model), and the converters ``generate_dummy_inputs(framework=...)`` uses.
Nothing here imports onnx or any framework at import time. ``python -m tensorweave.onnx`` is
4.37's ``python -m transformers.onnx``.
"""

from __future__ import annotations

from typing import Any

from ..export import export, read_export_folder, validate_model_outputs
from ..frontends.onnx import *  # noqa: F401,F403
from ..frontends.onnx import __all__ as config_names
from ..frontends.onnx.config import FRAMEWORK_CONVERTERS
from ..frontends.onnx.features import TASK_CLASS_NAMES, TF_TASK_CLASS_NAMES, FeaturesManager


class AutoModelForTask:
    """A loader standing in for Hugging Face's ``AutoModelFor<Task>``: ``from_pretrained(path)``
    loads a tensorweave model (``tw.models.load``: a checkpoint directory, a ``.gguf`` file or a
    packaged name) with the head of :attr:`task`."""

    task = "default"

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Any, *args: Any, **kwargs: Any) -> Any:
        from ..errors import ModelLoadError
        from ..models import load

        head = None if cls.task in ("causal-lm", "seq2seq-lm") else cls.task
        try:
            return load(pretrained_model_name_or_path, head=head)
        except ModelLoadError:
            if cls.task != "default":
                raise
            return load(pretrained_model_name_or_path)  # decoders / t5: 'default' is the base model

    def __repr__(self) -> str:
        return f"<{type(self).__name__} task={self.task!r}>"


def _loader(name: str, task: str) -> type:
    return type(name, (AutoModelForTask,), {"task": task, "__module__": __name__})


#: task -> loader class, as 4.37's table (the tasks tensorweave's models implement)
_IMPLEMENTED = (
    "default",
    "masked-lm",
    "causal-lm",
    "seq2seq-lm",
    "sequence-classification",
    "token-classification",
    "multiple-choice",
    "question-answering",
    "image-classification",  # vit.py (4.37 has no TensorFlow auto-class for it)
)
LOADERS = {task: _loader(TASK_CLASS_NAMES[task], task) for task in _IMPLEMENTED}
TF_LOADERS = {
    task: _loader(TF_TASK_CLASS_NAMES[task], task) for task in _IMPLEMENTED if task in TF_TASK_CLASS_NAMES
}
FeaturesManager._TASKS_TO_AUTOMODELS = LOADERS
FeaturesManager._TASKS_TO_TF_AUTOMODELS = TF_LOADERS
globals().update({cls.__name__: cls for cls in (*LOADERS.values(), *TF_LOADERS.values())})


def _to_torch(a: Any) -> Any:
    import torch

    return torch.from_numpy(a.copy())


def _to_tf(a: Any) -> Any:
    import tensorflow as tf

    return tf.constant(a)


def _to_jax(a: Any) -> Any:
    import jax

    from ..backends.jax.runtime import x64

    with x64():  # int64 token ids stay int64 (64-bit types for this conversion only)
        return jax.numpy.asarray(a)


FRAMEWORK_CONVERTERS.update({"pt": _to_torch, "tf": _to_tf, "jax": _to_jax})

__all__ = (
    list(config_names)
    + [
        "export",
        "validate_model_outputs",
        "read_export_folder",
        "AutoModelForTask",
    ]
    + [cls.__name__ for cls in LOADERS.values()]
)
del config_names
