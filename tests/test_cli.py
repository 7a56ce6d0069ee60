"""The ``tensorweave`` command: every user error is one line and exit status 2, checked before a
model is loaded; generate streams; parity gates a CI (exit 1 when a backend is perturbed)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tensorweave.cli import main

from conftest import IN_CI, require_backend


def run(*args: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """The command in a fresh process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "tensorweave", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def _smollm2() -> None:
    from tensorweave.errors import ModelLoadError
    from tensorweave.models import packaged_path

    try:
        packaged_path("smollm2")
    except ModelLoadError as exc:  # installed by make test; required in CI
        if IN_CI:
            raise
        pytest.skip(str(exc))


def test_version_and_module_entry_point():
    import tensorweave as tw

    out = run("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"tensorweave {tw.__version__}"


def test_backends_lists_versions_without_framework_noise():
    out = run("backends")
    assert out.returncode == 0, out.stderr
    assert "numpy" in out.stdout and "(default)" in out.stdout
    for name in ("torch", "tensorflow", "jax", "onnx"):
        require_backend(name)
        line = next(line for line in out.stdout.splitlines() if line.startswith(name))
        assert "installed" in line and any(ch.isdigit() for ch in line), line
    assert "absl" not in out.stderr and "oneDNN" not in out.stderr, out.stderr


@pytest.mark.parametrize(
    "argv, message",
    [
        (["generate", "--model", "no/such/dir", "--prompt", "hi"], "no such directory"),
        (["generate", "--model", "smollm2", "--prompt", "hi", "--backend", "tpu"], "unknown backend"),
        (["generate", "--model", "smollm2", "--prompt", "hi", "--top-k", "5"], "add --do-sample"),
        (["export", "--model", "smollm2", "--target", "caffe", "out/"], "unknown export target"),
        (["export", "--model", "smollm2", "--feature", "nonsense", "out/"], "nonsense"),
        (["parity", "--model", "smollm2", "--backends", "tpu"], "unknown backend"),
    ],
)
def test_user_errors_are_one_line_before_loading(argv, message, capsys, monkeypatch):
    import tensorweave.models as models

    def no_loading(*a, **k):
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr(models, "load", no_loading)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err, err


def test_bad_integer_argument_is_argparse_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["generate", "--model", "smollm2", "--prompt", "hi", "--max-new-tokens", "2.5"])
    assert exc.value.code == 2
    assert "not an integer" in capsys.readouterr().err


def test_export_to_a_path_under_a_file_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("mine")
    assert main(["export", "--model", "smollm2", str(blocker / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "is a file" in err and err.count("\n") == 1
    assert blocker.read_text() == "mine"


@pytest.mark.xdist_group("smollm2")
def test_generate_streams_paris():
    _smollm2()
    require_backend("torch")
    out = run(
        "generate", "--model", "smollm2", "--chat", "--prompt", "What is the capital of France?", "--backend", "torch",
        "--max-new-tokens", "12",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "Paris" in out.stdout
    assert "tokens/s" in out.stderr


@pytest.mark.xdist_group("smollm2")
def test_generate_with_the_quantized_blocks_still_answers_paris():
    """SmolLM2's Q4_1 / Q8_0 blocks kept (MatMulNBits on onnx): the demo question's answer."""
    _smollm2()
    require_backend("onnx")
    out = run(
        "generate", "--model", "smollm2", "--quantized", "--chat", "--prompt", "What is the capital of France?",
        "--backend", "onnx", "--max-new-tokens", "8",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "The capital of France is Paris" in out.stdout
    assert "(quantized)" in out.stderr


@pytest.mark.xdist_group("smollm2")
def test_parity_passes_and_fails_when_a_backend_is_perturbed():
    _smollm2()
    require_backend("torch")
    args = ("parity", "--model", "smollm2", "--backends", "numpy", "torch", "--max-new-tokens", "4")
    good = run(*args)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "all backends agree" in good.stdout and "torch" in good.stdout
    bad = run(*args, env={"TENSORWEAVE_PARITY_PERTURB": "torch:0.5"})
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "MISMATCH" in bad.stdout
