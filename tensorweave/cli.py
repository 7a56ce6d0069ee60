"""Command line: ``tensorweave backends | demo | show GRAPH.json | export --model M --feature F --target T OUT``."""

from __future__ import annotations

import argparse
import sys

from .ir.types import IRError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tensorweave", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("backends", help="list the backends and whether each is installed")
    sub.add_parser("demo", help="run the demo")
    show = sub.add_parser("show", help="print a saved IR graph")
    show.add_argument("path")
    _add_export_parser(sub)
    args = parser.parse_args(argv)
    try:
        if args.cmd == "backends":
            from .backends import registry

            chosen = registry.resolve()
            for name in registry.ALL:
                state = "installed" if registry.is_installed(name) else registry.missing_message(name)
                print(f"{name:<11} {state}{'  (default)' if name == chosen else ''}")
            return 0
        if args.cmd == "demo":
            from .demo import main as demo_main

            return demo_main()
        if args.cmd == "export":
            return _export(args)
        if args.cmd == "show":
            from .ir.serialize import load

            print(load(args.path))
            return 0
    except IRError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (ValueError, KeyError) as e:
        if args.cmd != "export":
            raise
        print(f"error: {e.args[0] if e.args else e}", file=sys.stderr)
        return 2
    return 1  # pragma: no cover


def _add_export_parser(sub: argparse._SubParsersAction) -> None:
    exp = sub.add_parser(
        "export", help="export a model's forward for one feature to onnx / torch / tensorflow / jax"
    )
    exp.add_argument(
        "-m",
        "--model",
        required=True,
        help="a Hugging Face checkpoint directory, a .gguf file, or a packaged model (smollm2, minilm)",
    )
    exp.add_argument(
        "--feature", default="default", help="the export feature (default: default), e.g. causal-lm-with-past"
    )
    exp.add_argument("--target", default="onnx", help="onnx (default), torch, tensorflow or jax")
    exp.add_argument("--opset", type=int, default=None, help="ONNX opset (default: max(21, the config's))")
    exp.add_argument(
        "--atol",
        type=float,
        default=None,
        help="validation tolerance (default: the config's atol_for_validation)",
    )
    exp.add_argument(
        "--validate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="re-run the artefact at batch 3 / sequence 9 against the numpy reference (default: on)",
    )
    exp.add_argument(
        "output", help="output directory, or the artefact's own name (model.onnx, model.pt2, ...)"
    )


def _export(args: argparse.Namespace) -> int:
    """``tensorweave export``: load, export, validate; one stderr line per stage."""
    import time

    from .export import export, validate_model_outputs
    from .models import load

    start = time.perf_counter()

    def say(msg: str) -> None:
        print(f"[{time.perf_counter() - start:6.1f}s] {msg}", file=sys.stderr, flush=True)

    say(f"loading {args.model}")
    model = load(args.model)
    say(f"loaded {model!r}")
    from .onnx import FeaturesManager

    features = FeaturesManager.get_supported_features_for_model_type(model.model_type)
    if args.feature not in features:  # HF's message prints the whole feature table; name the choices instead
        raise ValueError(
            f"{model.model_type} doesn't support feature {args.feature}; choose one of "
            f"{', '.join(features)} (--feature)"
        )
    res = export(model, args.feature, args.target, args.output, opset=args.opset, progress=say)
    if args.validate:
        validate_model_outputs(
            res.onnx_config, model, res.path, res.output_names, args.atol, target=res.target, progress=say
        )
        say(f"All good, model saved at: {res.path}")
    else:
        say(f"model saved at: {res.path} (not validated)")
    print(res.path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
