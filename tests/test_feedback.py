"""Feedback while tensorweave works (spec/reliability.md, "Feedback"): progress bars for weights,
compiles (saying why a program compiles), tokens and exports; the ``tensorweave`` logger; the
switches that turn bars off. Bars are forced on by pretending stderr is a terminal."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import tensorweave as tw
from tensorweave import log
from tensorweave.generation import programs

from tiny_lm import tiny_lm


@pytest.fixture
def bars(monkeypatch):
    """Bars on (stderr 'is a terminal'), verbosity at its default."""
    monkeypatch.setattr(log, "_stderr_is_terminal", lambda: True)
    monkeypatch.setattr(log, "_bars", True)
    before = log.get_verbosity()
    log.set_verbosity("warning")
    yield
    log.set_verbosity(before)


@pytest.fixture(scope="module")
def lm():
    return tiny_lm("llama", 5)[1]


def test_bars_follow_the_switches(bars, monkeypatch):
    assert log.progress_bars_enabled()
    log.disable_progress_bars()
    assert not log.progress_bars_enabled()
    assert isinstance(log.progress(total=3), log.NoBar)
    log.enable_progress_bars()
    log.set_verbosity("error")  # "error" silences bars as well
    assert not log.progress_bars_enabled()
    log.set_verbosity("warning")
    monkeypatch.setattr(log, "_stderr_is_terminal", lambda: False)  # a pipe or a file: no bars
    assert not log.progress_bars_enabled()
    assert list(log.progress([1, 2])) == [1, 2]


def test_generate_shows_the_compile_and_the_tokens(bars, lm, capsys, caplog):
    ids = np.asarray([[1, 5, 6, 7]], np.int64)
    programs.PROGRAMS.clear(lm)
    tw.generate(lm, ids, backend="numpy", max_new_tokens=4, do_sample=False)
    err = capsys.readouterr().err
    assert "compiling fused-any-prompt program on numpy" in err
    assert "generating on numpy" in err and "tok" in err
    # a longer prompt reuses the program; new settings compile again, saying why
    caplog.set_level(logging.INFO, logger="tensorweave")
    log.logger.propagate = True
    try:
        tw.generate(
            lm, np.asarray([[1, 5, 6, 7, 8]], np.int64), backend="numpy", max_new_tokens=6, do_sample=False
        )
        assert "compiling" not in caplog.text
        tw.generate(lm, ids, backend="numpy", max_new_tokens=4, do_sample=False, repetition_penalty=1.2)
    finally:
        log.logger.propagate = False
        log.set_verbosity("warning")
    assert "compiling a fused-any-prompt program on numpy (new generation settings)" in caplog.text
    assert "compiling fused-any-prompt program on numpy" in capsys.readouterr().err
    # step-wise (a streamer): the bar moves per token and the user's streamer still gets every token
    got = []

    class Streamer:
        def put(self, value):
            got.append(np.asarray(value).copy())

        def end(self):
            got.append("end")

    out = tw.generate(lm, ids, backend="numpy", max_new_tokens=4, min_new_tokens=4, streamer=Streamer())
    err = capsys.readouterr().err
    assert "generating on numpy" in err and "compiling static-prefill program on numpy" in err
    assert got[-1] == "end" and len(got) == 1 + 4 + 1  # the prompt, one put per new token, end()
    np.testing.assert_array_equal(np.concatenate([g.reshape(1, -1) for g in got[1:-1]], axis=1), out[:, 4:])


def test_no_bars_when_off(lm, capsys, monkeypatch):
    monkeypatch.setattr(log, "_stderr_is_terminal", lambda: True)
    monkeypatch.setattr(log, "_bars", False)
    programs.PROGRAMS.clear(lm)
    tw.generate(lm, np.asarray([[1, 5, 6]], np.int64), backend="numpy", max_new_tokens=2)
    assert capsys.readouterr().err == ""


def test_why_a_program_compiles():
    key = ("onnx", "fused", ((1, 8),), "plan-a", None)
    assert programs.why_new(key, []) == "first program for this model"
    assert (
        programs.why_new(key, [("onnx", "step", ((1, 8),), "plan-a", None)]) == "first program of this kind"
    )
    assert (
        programs.why_new(key, [("onnx", "fused", ((1, 4),), "plan-a", None)])
        == "new input shapes ((1, 8),), cached ((1, 4),)"
    )
    assert programs.why_new(key, [("onnx", "fused", ((1, 8),), "plan-b", None)]) == "new generation settings"


def test_compile_and_export_stages_are_logged(lm, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="tensorweave")
    log.logger.propagate = True  # let caplog see the records
    try:
        programs.PROGRAMS.clear(lm)
        tw.generate(lm, np.asarray([[1, 5, 6]], np.int64), backend="numpy", max_new_tokens=2)
        tw.export(lm, "causal-lm", "onnx", str(tmp_path / "m.onnx"))
    finally:
        log.logger.propagate = False
    text = caplog.text
    assert "fused-any-prompt program on numpy (first program for this model): traced and lowered" in text
    assert "tracing llama causal-lm" in text and "lowering to onnx" in text and "exported" in text
