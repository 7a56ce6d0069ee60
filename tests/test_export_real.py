"""tensorweave.export with real weights: SmolLM2-135M (``causal-lm-with-past``, 30 Llama layers)
and all-MiniLM-L6-v2 (``default``, 6 BERT layers) to every target, each artefact re-loaded from
its file and validated at batch 3 / sequence 9 (past 4) against the numpy reference; one SmolLM2
artefact is also run in a fresh process.

Tolerance: each config's own ``atol_for_validation`` -- BERT's 1e-5 (MiniLM's outputs are O(1),
differences measured 2-3.4e-6) and Llama's ``2e-4 * num_layers`` = 6e-3 for SmolLM2 (see
spec/onnx-config.md "Validation": its logits reach ~31 and differ by up to 2.2e-3 between backends
from float32 summation order over 30 layers). A wrong weight or op moves the logits by O(1).

Cost: heavy (each SmolLM2 artefact is ~0.5 GB). Measured on the shared 2-core machine under load:
SmolLM2 onnx 52 s, tensorflow 64 s, jax 75 s, torch 291 s (``torch.export`` of 30 layers plus
``torch.export.load``; 105 s with the machine idle; marked ``slow``), fresh process 39 s.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tensorweave as tw
import tensorweave.export  # noqa: F401 - the module (tw.export is the function)
from tensorweave.models import packaged_path

from conftest import require_backend

E = sys.modules["tensorweave.export"]
TARGETS = list(E.TARGETS)
#: artefacts the parametrised tests wrote, reused by the fresh-process test (one 30-layer export less)
_WRITTEN: dict = {}


def _packaged_or_skip(name):
    try:
        packaged_path(name)
    except Exception as exc:  # the weight packages are installed in CI; elsewhere skip
        if os.environ.get("CI", "").lower() == "true":
            raise
        pytest.skip(f"{name} weights not installed: {exc}")


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("export_real")


@pytest.fixture(scope="module")
def smollm2():
    _packaged_or_skip("smollm2")
    return tw.models.load("smollm2")


@pytest.fixture(scope="module")
def minilm():
    _packaged_or_skip("minilm")
    return tw.models.load("minilm")


def _export_and_validate(model, feature, target, out):
    require_backend(target)
    res = tw.export(model, feature, target, out)
    cfg = res.onnx_config
    assert res.input_names == list(cfg.inputs) and res.output_names == list(cfg.outputs)
    # re-loads the artefact from its file, runs it at batch 3 / sequence 9 (past 4), raises on mismatch
    E.validate_model_outputs(cfg, model, res.path, res.output_names, allow_pickle=True)
    if target == "onnx":
        import onnx

        onnx.checker.check_model(res.path, full_check=True)
    return res


@pytest.mark.xdist_group("smollm2")
@pytest.mark.parametrize(
    "target", [pytest.param(t, marks=[pytest.mark.slow] if t == "torch" else []) for t in TARGETS]
)
def test_smollm2_causal_lm_with_past_exports_and_validates(smollm2, target, out_dir):
    res = _export_and_validate(smollm2, "causal-lm-with-past", target, out_dir / f"smollm2-{target}")
    if target == "onnx":
        _WRITTEN[("smollm2", target)] = res  # for the fresh-process test
    else:
        shutil.rmtree(os.path.dirname(res.path) if target != "tensorflow" else res.path)  # ~0.5 GB each
    n = smollm2.config.num_hidden_layers
    assert res.output_names[0] == "logits" and f"present.{n - 1}.value" in res.output_names
    assert len(res.output_names) == 1 + 2 * n


@pytest.mark.xdist_group("smollm2")
def test_smollm2_onnx_artefact_runs_in_a_fresh_process(smollm2, out_dir, tmp_path):
    """The exported file alone (no model in the child) reproduces the reference outputs."""
    require_backend("onnx")
    res = _WRITTEN.get(("smollm2", "onnx")) or tw.export(
        smollm2, "causal-lm-with-past", "onnx", out_dir / "smollm2-onnx-fresh"
    )
    cfg = res.onnx_config
    inputs = E.validation_inputs(cfg, smollm2, seed=1)
    ref = E.reference_outputs(cfg, smollm2, cfg.generate_dummy_inputs_onnxruntime(inputs))
    np.savez(
        tmp_path / "io.npz",
        **{f"in:{k}": v for k, v in inputs.items()},
        **{f"ref:{k}": ref[k] for k in res.output_names},
    )
    code = textwrap.dedent(f"""
        import sys, json, numpy as np
        import tensorweave.export
        E = sys.modules["tensorweave.export"]
        io = np.load({str(tmp_path / "io.npz")!r})
        inputs = {{k[3:]: io[k] for k in io.files if k.startswith("in:")}}
        got = E.run_artefact({res.path!r}, inputs, allow_pickle=True)
        refs = {{k[4:]: io[k] for k in io.files if k.startswith("ref:")}}
        print(json.dumps({{"names": sorted(got), "shape": list(got["logits"].shape),
                          "bad": [k for k in refs if not np.allclose(refs[k], got[k], atol={cfg.atol_for_validation!r})],
                          "max": float(max(np.abs(refs[k] - got[k]).max() for k in refs))}}))
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["names"] == sorted(res.output_names)
    assert out["shape"] == [E.VALIDATION_BATCH, E.VALIDATION_SEQUENCE, smollm2.config.vocab_size]
    assert out["bad"] == [], out


@pytest.mark.xdist_group("minilm")
@pytest.mark.parametrize("target", TARGETS)
def test_minilm_default_exports_and_validates(minilm, target, out_dir):
    res = _export_and_validate(minilm, "default", target, out_dir / f"minilm-{target}")
    assert res.output_names == ["last_hidden_state", "pooler_output"]
