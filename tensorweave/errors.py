"""The exceptions users catch, besides :class:`tensorweave.ir.IRError` (problems with an IR graph).

All are ``ValueError`` subclasses with a one-line message that names the file, field, key or
limit and the fix. This module imports nothing from the rest of tensorweave, so every room may
raise them.
"""

from __future__ import annotations


class ModelLoadError(ValueError):
    """A checkpoint, config.json, GGUF file or tokenizer that cannot be loaded as given."""


class ArtefactError(ValueError):
    """An artefact on disk that cannot be written or read as asked (export folders, generation
    artefacts, manifests)."""
