"""``python -m tensorweave.onnx --model NAME_OR_PATH [--feature F] [--opset N] [--atol A] OUTPUT``.

Transformers 4.37's ``python -m transformers.onnx``: load the model for the feature
(``FeaturesManager.get_model_from_feature``), export it to ONNX with the feature's config (opset
default ``config.default_onnx_opset``; below it is 4.37's ``ValueError``), validate the file with
``validate_model_outputs`` (``--atol`` default ``config.atol_for_validation``) and print
"All good, model saved at: ...". ``OUTPUT`` is a directory (an Optimum-style export folder with
``model.onnx``) or a ``.onnx`` file name. Optimum task names are accepted as ``--feature``.
Exit status 0 on success, 1 with one line on stderr on an error.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        "python -m tensorweave.onnx", description="Export a model to ONNX (4.37's CLI)."
    )
    p.add_argument("-m", "--model", required=True, help="checkpoint directory, .gguf file or packaged name")
    p.add_argument("--feature", default="default", help="the export feature (4.37 or Optimum task name)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: the config's)")
    p.add_argument("--atol", type=float, default=None, help="validation tolerance (default: the config's)")
    p.add_argument("--framework", default=None, help="pt or tf (both load the same tensorweave model)")
    p.add_argument("--cache_dir", default=None, help="accepted for compatibility; unused")
    p.add_argument("--preprocessor", default="auto", help="accepted for compatibility; unused")
    p.add_argument("--export_with_transformers", action="store_true", help="accepted; unused")
    p.add_argument("output", help="output directory (or .onnx file)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from . import FeaturesManager, export, validate_model_outputs

    try:
        feature = FeaturesManager.canonical_feature(args.feature)
        model = FeaturesManager.get_model_from_feature(feature, args.model, framework=args.framework)
        _, ctor = FeaturesManager.check_supported_model_or_raise(model, feature=feature)
        onnx_config = ctor(model.config)
        opset = onnx_config.default_onnx_opset if args.opset is None else args.opset
        if opset < onnx_config.default_onnx_opset:
            raise ValueError(
                f"Opset {opset} is not sufficient to export {model.model_type}. "
                f"At least  {onnx_config.default_onnx_opset} is required."
            )
        res = export(model, feature, "onnx", args.output, opset=opset, onnx_config=onnx_config)
        atol = onnx_config.atol_for_validation if args.atol is None else args.atol
        validate_model_outputs(onnx_config, model, res.path, res.output_names, atol)
    except (ValueError, KeyError, OSError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {msg}", file=sys.stderr)
        return 1
    print(f"All good, model saved at: {os.path.abspath(args.output)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
