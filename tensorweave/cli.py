"""The ``tensorweave`` command (also ``python -m tensorweave``).

Commands: ``generate`` (text in, text out, streamed), ``parity`` (every backend against the numpy
reference on a real model; non-zero exit on a mismatch, for a user's CI), ``bench`` (tokens/s per
backend), ``export`` (a model's forward for one feature, or with ``--generation`` the decode loop,
to onnx / torch / tensorflow / jax), ``backends`` (installed frameworks and versions), ``show``
(print a saved IR graph), ``demo``. ``--version`` and ``-v/--verbose`` / ``-q/--quiet`` apply to
all. Every user error is one line on stderr and exit status 2; arguments are checked before any
model is loaded.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Sequence

from .errors import ArtefactError, ModelLoadError
from .ir.types import IRError

USER_ERRORS = (
    IRError,
    ModelLoadError,
    ArtefactError,
    ValueError,
    KeyError,
    FileNotFoundError,
    PermissionError,
)


def version() -> str:
    """The installed package's version (package metadata), or the source tree's."""
    from importlib import metadata

    try:
        return metadata.version("tensorweave")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    from . import log

    if args.verbose:
        log.set_verbosity("debug" if args.verbose > 1 else "info")
    elif args.quiet:
        log.set_verbosity("error")
    try:
        return int(COMMANDS[args.cmd](args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"error: {str(msg).splitlines()[0] if str(msg) else type(e).__name__}", file=sys.stderr)
        return 2


# ---------------------------------------------------------------------------------------- parser
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tensorweave", description="Generation and optimizer math written once, run on every framework."
    )
    p.add_argument("--version", action="version", version=f"tensorweave {version()}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="progress and timings (-vv: debug)")
    p.add_argument("-q", "--quiet", action="store_true", help="errors only")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    sub.add_parser("backends", help="list the backends, their framework versions and the default")
    sub.add_parser("demo", help="run the demo (what `make demo` runs)")
    show = sub.add_parser("show", help="print a saved IR graph (.json)")
    show.add_argument("path")
    _generate_parser(sub)
    _parity_parser(sub)
    _bench_parser(sub)
    _export_parser(sub)
    return p


def _model_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-m",
        "--model",
        required=True,
        help="a Hugging Face checkpoint directory, a .gguf file, or a packaged model (smollm2, minilm)",
    )


def _generate_parser(sub: Any) -> None:
    g = sub.add_parser("generate", help="generate text from a prompt, streamed as it is produced")
    _model_arg(g)
    g.add_argument("-p", "--prompt", required=True, help="the prompt text")
    g.add_argument("--chat", action="store_true", help="wrap the prompt in the model's chat template")
    g.add_argument(
        "--quantized",
        action="store_true",
        help="keep a GGUF file's Q4_0 / Q4_1 / Q8_0 blocks (fast on onnx: MatMulNBits)",
    )
    g.add_argument("-b", "--backend", default=None, help="numpy, torch, tensorflow, jax or onnx")
    g.add_argument("--all-backends", action="store_true", help="run every installed backend; compare tokens")
    g.add_argument("--max-new-tokens", type=_positive_int, default=32)
    g.add_argument("--num-beams", type=_positive_int, default=1)
    g.add_argument("--do-sample", action="store_true", help="sample instead of greedy / beam search")
    g.add_argument("--seed", type=int, default=0, help="sampling seed (the same tokens on every backend)")
    g.add_argument("--temperature", type=float, default=None)
    g.add_argument("--top-k", type=int, default=None)
    g.add_argument("--top-p", type=float, default=None)
    g.add_argument(
        "--no-stream", action="store_true", help="print the answer at the end (runs the fused program)"
    )


def _parity_parser(sub: Any) -> None:
    p = sub.add_parser(
        "parity", help="one forward and one generation per backend against numpy; exit 1 on a mismatch"
    )
    _model_arg(p)
    p.add_argument("--backends", nargs="+", default=None, help="backends to check (default: every installed)")
    p.add_argument(
        "--atol", type=float, default=None, help="max |logit diff| allowed (default: 1e-3 per layer)"
    )
    p.add_argument("--prompt", default="The capital of France is", help="the prompt")
    p.add_argument("--max-new-tokens", type=_positive_int, default=8)


def _bench_parser(sub: Any) -> None:
    b = sub.add_parser("bench", help="tokens/s of greedy generation per backend (a short benchmark)")
    b.add_argument("--models", nargs="+", default=["smollm2"], help="models to run (default: smollm2)")
    b.add_argument("--backends", nargs="+", default=None, help="backends (default: every installed)")
    b.add_argument("--max-new-tokens", type=_positive_int, default=32)
    b.add_argument("--prompt-length", type=_positive_int, default=32)


def _export_parser(sub: Any) -> None:
    exp = sub.add_parser(
        "export",
        help="export a model's forward for one feature (or its decode loop) to onnx/torch/tensorflow/jax",
    )
    _model_arg(exp)
    exp.add_argument(
        "--feature",
        default="default",
        help="the export feature (default: default), e.g. causal-lm-with-past or optimum's text-generation-with-past",
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
        "--generation",
        action="store_true",
        help="export the whole decode loop (prompt step + greedy/beam loop + KV cache) as one artefact",
    )
    exp.add_argument("--num-beams", type=_positive_int, default=1, help="with --generation: beams")
    exp.add_argument("--max-new-tokens", type=_positive_int, default=64, help="with --generation: new tokens")
    exp.add_argument(
        "output", help="output directory, or the artefact's own name (model.onnx, model.pt2, ...)"
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


# ---------------------------------------------------------------------------------------- helpers
def _say(start: float):
    def say(msg: str) -> None:
        print(f"[{time.perf_counter() - start:6.1f}s] {msg}", file=sys.stderr, flush=True)

    return say


def _backends(names: Sequence[str] | None) -> list[str]:
    from .backends import registry

    if not names:
        return registry.available()
    out = []
    for n in names:
        name = registry.resolve(n)  # a one-line error naming the choices or the pip extra
        registry.get(name)
        out.append(name)
    return out


def _check_model_arg(text: str) -> None:
    """Before loading: the model names a packaged model, a .gguf file or a directory."""
    from .models import ALIASES, PACKAGED

    key = ALIASES.get(text.lower(), text.lower())
    if key in PACKAGED or os.path.isdir(text) or (text.endswith(".gguf") and os.path.isfile(text)):
        return
    raise ModelLoadError(
        f"--model {text!r}: no such directory or .gguf file, and not a packaged model "
        f"(packaged: {', '.join(sorted(PACKAGED))})"
    )


def _load(text: str, say: Any, quantized: bool = False) -> Any:
    from .models import load

    say(f"loading {text}" + (" (quantized)" if quantized else ""))
    model = load(text, quantized=quantized)
    say(f"loaded {model!r}")
    return model


def _prompt_ids(model: Any, prompt: str, chat: bool) -> Any:
    import numpy as np

    tok = model.tokenizer
    if tok is None:
        raise ModelLoadError(
            f"{model.source or 'the model'} has no tokenizer; generate needs one to read --prompt"
        )
    if chat:
        ids = tok.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=True, add_generation_prompt=True
        )
    else:
        ids = tok.encode(prompt)
    if not len(ids):
        raise ValueError("--prompt is empty after tokenization; give some text")
    return np.asarray([ids], np.int64)


# ---------------------------------------------------------------------------------------- commands
def _cmd_backends(args: argparse.Namespace) -> int:
    from .backends import registry

    chosen = registry.resolve()
    for name in registry.ALL:
        if registry.is_installed(name):
            state = f"installed  {registry.framework_version(name)}"
        else:
            state = registry.missing_message(name)
        print(f"{name:<11} {state}{'  (default)' if name == chosen else ''}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import main as demo_main

    return demo_main()


def _cmd_show(args: argparse.Namespace) -> int:
    from .ir.serialize import load

    print(load(args.path))
    return 0


def _generation_kwargs(args: argparse.Namespace) -> dict:
    kw: dict = {"max_new_tokens": args.max_new_tokens, "num_beams": args.num_beams}
    if args.do_sample:
        kw["do_sample"] = True
        for name in ("temperature", "top_k", "top_p"):
            if getattr(args, name) is not None:
                kw[name] = getattr(args, name)
    elif any(getattr(args, n) is not None for n in ("temperature", "top_k", "top_p")):
        raise ValueError("--temperature / --top-k / --top-p apply to sampling: add --do-sample")
    return kw


def _cmd_generate(args: argparse.Namespace) -> int:
    import numpy as np

    import tensorweave as tw

    kw = _generation_kwargs(args)
    names = _backends(None if args.all_backends else ([args.backend] if args.backend else None))
    if not args.all_backends:
        names = names[:1] if args.backend is None else names
        if args.backend is None:
            names = [tw.backends.registry.resolve()]
    _check_model_arg(args.model)
    say = _say(time.perf_counter())
    model = _load(args.model, say, args.quantized)
    if not model.is_decoder and not model.is_encoder_decoder:
        raise ValueError(f"--model {args.model}: a {model.model_type} model does not generate text")
    ids = _prompt_ids(model, args.prompt, args.chat)
    results = {}
    for name in names:
        stream = not args.no_stream and args.num_beams == 1
        streamer = (
            tw.TextStreamer(model.tokenizer, skip_prompt=True, skip_special_tokens=True) if stream else None
        )
        if len(names) > 1:
            print(f"--- {name}", flush=True)
        start = time.perf_counter()
        out = tw.generate(model, ids, backend=name, seed=args.seed, streamer=streamer, **kw)
        took = time.perf_counter() - start
        new = np.asarray(out)[0, ids.shape[1] :]
        if streamer is None:
            print(model.tokenizer.decode(new, skip_special_tokens=True).strip(), flush=True)
        say(
            f"{name}: {len(new)} tokens in {took:.1f} s ({len(new) / max(took, 1e-9):.1f} tokens/s, first call compiles)"
        )
        results[name] = new
        if len(names) > 1:
            from .bench import release_programs

            release_programs()  # one backend's weight copies at a time
    if len(results) > 1:
        first = next(iter(results.values()))
        same = all(np.array_equal(v, first) for v in results.values())
        print(f"tokens identical on {', '.join(results)}: {'yes' if same else 'NO'}")
        return 0 if same else 1
    return 0


def _cmd_parity(args: argparse.Namespace) -> int:
    from .bench import model_parity

    names = _backends(args.backends)
    _check_model_arg(args.model)
    say = _say(time.perf_counter())
    model = _load(args.model, say)
    report = model_parity(
        model, names, prompt=args.prompt, max_new_tokens=args.max_new_tokens, atol=args.atol, progress=say
    )
    print(report.table())
    return 0 if report.ok else 1


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench import generation_benchmark

    names = _backends(args.backends)
    for m in args.models:
        _check_model_arg(m)
    say = _say(time.perf_counter())
    for m in args.models:
        model = _load(m, say)
        print(
            generation_benchmark(
                model,
                names,
                prompt_length=args.prompt_length,
                max_new_tokens=args.max_new_tokens,
                progress=say,
            )
        )
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    """``tensorweave export``: check the arguments and the output path, load, export, validate;
    one stderr line per stage."""
    from . import io
    from .export import check_export_arguments, export, validate_model_outputs

    target = check_export_arguments(args.feature, args.target, generation=args.generation, output=args.output)
    _check_model_arg(args.model)
    io.check_writable(os.path.abspath(args.output))  # before loading: the output can be written
    say = _say(time.perf_counter())
    model = _load(args.model, say)
    if args.generation:
        from .export_generation import export_generation

        path = export_generation(
            model, args.output, target=target, num_beams=args.num_beams, max_new_tokens=args.max_new_tokens
        )
        say(f"generation loop saved at: {path}")
        print(path)
        return 0
    from .onnx import FeaturesManager

    feature = FeaturesManager.canonical_feature(args.feature)
    features = FeaturesManager.get_supported_features_for_model_type(model.model_type)
    if feature not in features:  # HF's message prints the whole feature table; name the choices instead
        raise ValueError(
            f"{model.model_type} doesn't support feature {args.feature}; choose one of "
            f"{', '.join(features)} (--feature)"
        )
    res = export(model, feature, target, args.output, opset=args.opset, progress=say)
    if args.validate:
        validate_model_outputs(
            res.onnx_config,
            model,
            res.path,
            res.output_names,
            args.atol,
            target=res.target,
            allow_pickle=True,  # the artefact this process has just written
            progress=say,
        )
        say(f"All good, model saved at: {res.path}")
    else:
        say(f"model saved at: {res.path} (not validated)")
    print(res.path)
    return 0


COMMANDS = {
    "backends": _cmd_backends,
    "demo": _cmd_demo,
    "show": _cmd_show,
    "generate": _cmd_generate,
    "parity": _cmd_parity,
    "bench": _cmd_bench,
    "export": _cmd_export,
}

if __name__ == "__main__":
    sys.exit(main())
