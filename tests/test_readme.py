"""Every Python block and every ``tensorweave`` command line of README.md runs verbatim in a fresh
process (in a temporary directory, so what they write stays there)."""

from __future__ import annotations

import os
import pathlib
import re
import shlex
import subprocess
import sys
import textwrap

import pytest

from conftest import IN_CI

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
TEXT = README.read_text()
PY_BLOCKS = [textwrap.dedent(b) for b in re.findall(r"```python\n(.*?)```", TEXT, re.S)]
CLI_LINES = [
    line.split("  #")[0].strip()
    for block in re.findall(r"```bash\n(.*?)```", TEXT, re.S)
    for line in block.splitlines()
    if line.strip().startswith("tensorweave ")
]


def _packaged() -> None:
    from tensorweave.errors import ModelLoadError
    from tensorweave.models import packaged_path

    try:
        packaged_path("smollm2")
    except ModelLoadError as exc:  # installed by make test; required in CI
        if IN_CI:
            raise
        pytest.skip(str(exc))


def test_the_readme_has_blocks_and_commands():
    assert len(PY_BLOCKS) >= 3 and len(CLI_LINES) >= 8


# SmolLM2 on every backend in a child process takes several GB: these share the "smollm2" xdist
# group with the other real-weight tests, so no two of them run at once.
@pytest.mark.xdist_group("smollm2")
@pytest.mark.parametrize("index", range(len(PY_BLOCKS)))
def test_python_block_runs(index, tmp_path):
    _packaged()
    code = PY_BLOCKS[index]
    if "def test_" in code:  # the pytest example: also call its first test with the seeded rng
        code += "\nimport numpy as _np\ntest_same_on_every_backend(_np.random.default_rng(0))\n"
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=900
    )
    assert run.returncode == 0, (
        f"README block {index} failed:\n{code}\n{run.stdout[-2000:]}{run.stderr[-3000:]}"
    )


@pytest.mark.xdist_group("smollm2")
@pytest.mark.parametrize("line", CLI_LINES)
def test_cli_line_runs(line, tmp_path):
    _packaged()
    args = shlex.split(line)[1:]
    run = subprocess.run(
        [sys.executable, "-m", "tensorweave", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert run.returncode == 0, f"{line}\n{run.stdout[-2000:]}{run.stderr[-3000:]}"
    assert "Traceback" not in run.stderr
