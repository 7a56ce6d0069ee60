"""Exports are transactions, and nothing executes file content by default (spec/reliability.md).

Each test names the promise it holds: checks before any work, the previous export loadable until
the swap, no temporary left on a failure or Ctrl-C, stale pairs refused, stale temporaries of
killed writers swept, ``.pt2`` files refused without ``allow_pickle``.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import sys

import numpy as np
import pytest

import tensorweave as tw
import tensorweave.export  # noqa: F401 - the module (tw.export is the function)
from tensorweave import io
from tensorweave.errors import ArtefactError
from tensorweave.export_generation import export_generation, load_generation

E = sys.modules["tensorweave.export"]
G = sys.modules["tensorweave.export_generation"]

from test_export import gpt2_config, random_model  # noqa: E402

from conftest import require_backend  # noqa: E402

FEATURE = "causal-lm"


def _gpt2(seed=0):
    return random_model(gpt2_config(layers=1), seed=seed)


def _logits(path, target="onnx", allow_pickle=False):
    feeds = {"input_ids": np.array([[1, 5, 7]], np.int64), "attention_mask": np.ones((1, 3), np.int64)}
    return E.run_artefact(path, feeds, target, allow_pickle=allow_pickle)["logits"]


def _no_temporaries(*dirs):
    for d in dirs:
        for root, names, files in os.walk(d):
            bad = [n for n in names + files if io.TMP_MARK in n]
            assert not bad, f"temporaries left in {root}: {bad}"


# ------------------------------------------------------------------ 1. never execute file content


class _Boom:
    """Unpickling this creates a marker file: the code a crafted .pt2 would run."""

    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _crafted_pt2(tmp_path):
    marker = tmp_path / "pwned"
    _Boom.marker = str(marker)
    path = tmp_path / "evil.pt2"
    path.write_bytes(pickle.dumps(_Boom()))
    return str(path), marker


def test_pt2_is_refused_without_allow_pickle_and_runs_nothing(tmp_path):
    require_backend("torch")
    from tensorweave.backends.torch import artefact

    path, marker = _crafted_pt2(tmp_path)
    msg = (
        "torch.export.load, which unpickles and can run code: pass allow_pickle=True only for files you trust"
    )
    with pytest.raises(ArtefactError, match=msg):
        artefact.load(path)
    # the generation loader: a side file that pins the crafted file by hash does not open the gate
    side = {
        "format": "tensorweave-generation",
        "target": "torch",
        "max_new_tokens_cap": 4,
        "outputs": ["sequences", "length"],
        "artefact_sha256": io.sha256(path),
    }
    (tmp_path / "evil.pt2.generation.json").write_text(json.dumps(side))
    with pytest.raises(ArtefactError, match="allow_pickle=True only for files you trust"):
        load_generation(path)
    side_doc = {"format": E.SIDE_FILE_FORMAT, "inputs": [], "outputs": [], "artefact_sha256": io.sha256(path)}
    (tmp_path / "evil.pt2.json").write_text(json.dumps(side_doc))
    with pytest.raises(ArtefactError, match="allow_pickle"):
        E.run_artefact(path, {}, "torch")
    assert not marker.exists()


def test_validation_of_a_pt2_needs_allow_pickle(tmp_path):
    require_backend("torch")
    model = _gpt2()
    res = tw.export(model, FEATURE, "torch", tmp_path / "t")  # its own check loads it: allowed inside
    with pytest.raises(ArtefactError, match="allow_pickle"):
        tw.validate_model_outputs(res.onnx_config, model, res.path, res.output_names)
    tw.validate_model_outputs(res.onnx_config, model, res.path, res.output_names, allow_pickle=True)


# ------------------------------------------------------------------ 2. checks before any work


def _no_tracing(monkeypatch):
    def fail(*a, **k):
        raise AssertionError("traced before the output / feature / target was checked")

    monkeypatch.setattr(E, "trace_feature", fail)
    monkeypatch.setattr(G, "build_generation_graph", fail)
    monkeypatch.setattr(G, "resolve_export_plan", fail)


def test_foreign_folder_is_refused_before_tracing_naming_its_files(tmp_path, monkeypatch):
    _no_tracing(monkeypatch)
    model = _gpt2()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    (mine / "photo.jpg").write_bytes(b"\xff")
    for target in ("onnx", "jax", "torch"):
        with pytest.raises(ArtefactError, match=r"not written by tensorweave \(notes.txt, photo.jpg\)"):
            tw.export(model, FEATURE, target, mine)
    # the same checks for callers that load a model first (the CLI), creating nothing
    with pytest.raises(ArtefactError, match="not written by tensorweave"):
        E.check_export_arguments("text-generation", "onnx", output=mine)
    assert E.check_export_arguments("causal-lm", "onnx", output=tmp_path / "new") == "onnx"
    assert not (tmp_path / "new").exists()
    assert sorted(os.listdir(mine)) == ["notes.txt", "photo.jpg"]
    assert (mine / "notes.txt").read_text() == "keep me"
    with pytest.raises(ArtefactError, match="not written by tensorweave"):
        export_generation(model, str(mine), target="tensorflow", max_new_tokens=2)


def test_unwritable_output_and_bad_arguments_are_refused_before_tracing(tmp_path, monkeypatch):
    _no_tracing(monkeypatch)
    model = _gpt2()
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(ArtefactError, match="is a file, not a directory"):
        tw.export(model, FEATURE, "onnx", blocker / "out")
    with pytest.raises(ArtefactError, match="is a file, not a directory"):
        export_generation(model, str(blocker / "gen.onnx"), max_new_tokens=2)
    with pytest.raises(ValueError, match="unknown export target"):
        tw.export(model, FEATURE, "mxnet", tmp_path / "o")
    with pytest.raises(ValueError, match="unknown export target"):
        export_generation(model, str(tmp_path / "g.onnx"), target="mxnet")
    with pytest.raises(ValueError, match="doesn't support feature"):
        tw.export(model, "image-segmentation", "onnx", tmp_path / "o")
    with pytest.raises(ValueError, match="max_new_tokens"):
        export_generation(model, str(tmp_path / "g.onnx"), max_new_tokens=0)
    assert sorted(os.listdir(tmp_path)) == ["a_file"]


# ------------------------------------------------------------------ 3. atomic replace, rollback


def test_failed_check_keeps_the_previous_export_and_leaves_nothing(tmp_path, monkeypatch):
    old, new = _gpt2(0), _gpt2(1)
    out = tmp_path / "out"
    res = tw.export(old, FEATURE, "onnx", out)
    before = _logits(res.path)
    monkeypatch.setattr(E, "artefact_output_names", lambda *a, **k: ["not-logits"])
    with pytest.raises(ArtefactError, match="staged artefact has outputs"):
        tw.export(new, FEATURE, "onnx", out)
    np.testing.assert_array_equal(_logits(res.path), before)
    _no_temporaries(tmp_path)
    monkeypatch.undo()
    tw.export(new, FEATURE, "onnx", out)  # a re-export replaces our own folder whole
    assert not np.allclose(_logits(res.path), before)
    io.read_manifest(str(out), verify=True)


@pytest.mark.parametrize("form", ["folder", "file", "external"])
def test_ctrl_c_during_the_write_keeps_the_previous_export(tmp_path, monkeypatch, form):
    """KeyboardInterrupt raised from a monkeypatched write: old export intact, no temporaries."""
    from tensorweave.backends.onnx import artefact

    old, new = _gpt2(0), _gpt2(1)
    out = tmp_path / ("out" if form == "folder" else "m.onnx")
    kw = {"external_data": True} if form == "external" else {}
    res = tw.export(old, FEATURE, "onnx", out, **kw)
    before = _logits(res.path)
    listing = sorted(os.listdir(tmp_path))

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(artefact, "_write_synced", interrupted)
    monkeypatch.setattr(artefact, "atomic_write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tw.export(new, FEATURE, "onnx", out, **kw)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == listing
    np.testing.assert_array_equal(_logits(res.path), before)
    _no_temporaries(tmp_path)


def test_ctrl_c_in_export_generation_leaves_nothing(tmp_path, monkeypatch):
    model = _gpt2()
    path = str(tmp_path / "gen.onnx")
    export_generation(model, path, max_new_tokens=3)
    ids = np.array([[1, 4, 6]], np.int64)
    before = load_generation(path)(ids)

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(io, "atomic_write_json", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_generation(random_model(gpt2_config(layers=1), seed=5), path, max_new_tokens=3)
    monkeypatch.undo()
    np.testing.assert_array_equal(load_generation(path)(ids), before)
    assert sorted(os.listdir(tmp_path)) == ["gen.onnx", "gen.onnx.generation.json"]


# ------------------------------------------------------------------ 4. stale pairs are errors


def test_stale_external_data_is_refused(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    tw.export(_gpt2(0), FEATURE, "onnx", a / "m.onnx", external_data=True)
    res = tw.export(_gpt2(1), FEATURE, "onnx", b / "m.onnx", external_data=True)
    shutil.copy(a / "m.onnx.data", b / "m.onnx.data")  # old data beside the new graph
    with pytest.raises(ArtefactError, match="stale or mixed pair"):
        _logits(res.path)
    with pytest.raises(ArtefactError, match="stale or mixed pair"):
        tw.validate_model_outputs(res.onnx_config, _gpt2(1), res.path, res.output_names)
    os.remove(b / "m.onnx.data")
    with pytest.raises(ArtefactError, match="missing"):
        _logits(res.path)


def test_folder_manifest_catches_a_changed_file(tmp_path):
    res = tw.export(_gpt2(0), FEATURE, "onnx", tmp_path / "out", external_data=True)
    other = tw.export(_gpt2(1), FEATURE, "onnx", tmp_path / "other", external_data=True)
    shutil.copy(other.path, res.path)  # a new graph (and its hash) beside the old data: the manifest
    with pytest.raises(ArtefactError, match="does not match the manifest"):
        _logits(res.path)


def test_stale_side_file_is_refused(tmp_path):
    require_backend("jax")
    a = tw.export(_gpt2(0), FEATURE, "jax", tmp_path / "a.stablehlo")
    b = tw.export(_gpt2(1), FEATURE, "jax", tmp_path / "b.stablehlo")
    shutil.copy(tmp_path / "a.stablehlo.json", tmp_path / "b.stablehlo.json")
    with pytest.raises(ArtefactError, match="stale or mixed pair"):
        _logits(b.path, "jax")
    assert _logits(a.path, "jax").shape == (1, 3, 61)


def test_generation_side_file_of_another_export_is_refused(tmp_path):
    """An artefact built for 4 new tokens beside a side file that asks for 10: an error."""
    model = _gpt2()
    four, ten = str(tmp_path / "four.onnx"), str(tmp_path / "ten.onnx")
    export_generation(model, four, max_new_tokens=4)
    export_generation(model, ten, max_new_tokens=10)
    shutil.copy(ten + G.SIDE_SUFFIX, four + G.SIDE_SUFFIX)
    with pytest.raises(ArtefactError, match=r"stale or mixed pair: its cap is 10"):
        load_generation(four)
    assert load_generation(ten).cap == 10


# ------------------------------------------------------------------ 5. temporaries of killed writers


def test_stale_temporaries_of_dead_writers_are_swept(tmp_path):
    dead_pid = 4_000_000  # above any pid_max: no such process
    stale_dir = tmp_path / f".out{io.TMP_MARK}{dead_pid}-abc"
    stale_dir.mkdir()
    (stale_dir / "model.onnx").write_bytes(b"partial")
    stale_file = tmp_path / f".g.onnx{io.TMP_MARK}{dead_pid}-xyz"
    stale_file.write_bytes(b"partial")
    live = tmp_path / f".out{io.TMP_MARK}{os.getpid()}-mine"  # a writer still running: kept
    live.mkdir()
    foreign = tmp_path / ".out.tw-tmp-notapid"  # not a name we make: kept
    foreign.mkdir()
    tw.export(_gpt2(), FEATURE, "onnx", tmp_path / "out")
    export_generation(_gpt2(), str(tmp_path / "g.onnx"), max_new_tokens=2)
    assert not stale_dir.exists() and not stale_file.exists()
    assert live.exists() and foreign.exists()


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_models_load_reads_an_onnx_export_folder_back(tmp_path, kind):
    """tw.models.load(folder) on an export folder: same config, weights and logits as the model."""
    require_backend("onnx")
    from tiny_lm import tiny_lm

    _, model = tiny_lm(kind, seed=3)
    folder = tmp_path / "export"
    tw.export(model, "causal-lm-with-past", "onnx", str(folder))
    back = tw.models.load(str(folder))
    assert back.model_type == model.model_type
    assert set(back.params) == set(model.params)
    for name, value in model.params.items():
        np.testing.assert_array_equal(back.params[name], value, err_msg=name)
    ids = np.array([[1, 5, 7, 9]], np.int64)
    np.testing.assert_array_equal(
        tw.generate(back, ids, backend="numpy", max_new_tokens=4),
        tw.generate(model, ids, backend="numpy", max_new_tokens=4),
    )
