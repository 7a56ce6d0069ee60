"""SIGKILL during an export (spec/reliability.md, "Exports are transactions").

For each target a worker process exports a tiny GPT-2 into one folder over and over, alternating
two weight sets; it is SIGKILLed at seeded points in time (fractions of its measured export time,
so every phase is hit across the rounds: tracing, writing into the staging directory, the
manifest, the swap). After each kill the folder must load and run, giving the outputs of one of the
two weight sets (the old export or the new one, never a mix, never nothing). A follow-up export
then leaves no temporary behind: the kill's staging directory is swept because its writer's
process id is gone (``io.sweep_stale``). The four targets run concurrently, two rounds each.

Time: eight worker start-ups (framework import + one export each) and one follow-up export per
target; about 50 s on two idle cores, 95 s measured with the machine at load 8.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np

import tensorweave as tw
import tensorweave.export  # noqa: F401
from tensorweave import io

E = sys.modules["tensorweave.export"]

from test_export import gpt2_config, random_model  # noqa: E402

from conftest import require_backend  # noqa: E402

TARGETS = ("onnx", "torch", "tensorflow", "jax")
ROUNDS = 2
SEED = 20261204
FEATURE = "causal-lm"
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))

WORKER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    import tensorweave as tw
    from test_export import gpt2_config, random_model
    target, out = sys.argv[1], sys.argv[2]
    models = [random_model(gpt2_config(layers=1), seed=s) for s in (0, 1)]
    i = 0
    while True:
        t0 = time.perf_counter()
        tw.export(models[i % 2], "causal-lm", target, out)
        print(f"exported {{time.perf_counter() - t0:.3f}}", flush=True)
        i += 1
""")


def _feeds():
    return {"input_ids": np.array([[1, 5, 7, 9]], np.int64), "attention_mask": np.ones((1, 4), np.int64)}


def _references():
    return [
        random_model(gpt2_config(layers=1), seed=s)(
            _feeds()["input_ids"], _feeds()["attention_mask"], backend="numpy"
        )["logits"]
        for s in (0, 1)
    ]


def _artefact(folder, target):
    return folder if target == "tensorflow" else os.path.join(folder, E.DEFAULT_NAMES[target])


def _kill_round(script, target, folder, frac, log):
    """Start a worker, wait for its first complete export, SIGKILL it ``frac`` x one export later."""
    proc = subprocess.Popen(
        [sys.executable, script, target, folder],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "TENSORWEAVE_VERBOSITY": "error"},
    )
    try:
        line = proc.stdout.readline()
        if not line.startswith("exported"):
            log.append((target, f"worker ended without exporting (rc {proc.poll()})"))
            return
        duration = float(line.split()[1])
        time.sleep(frac * duration)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_sigkill_leaves_the_old_or_the_new_export(tmp_path):
    for t in TARGETS:
        require_backend(t)
    targets = list(TARGETS)
    script = str(tmp_path / "worker.py")
    with open(script, "w") as f:
        f.write(WORKER.format(tests=TESTS_DIR))
    rng = random.Random(SEED)
    fracs = {t: [rng.uniform(0.05, 1.3) for _ in range(ROUNDS)] for t in targets}
    refs = _references()
    for r in range(ROUNDS):
        log: list = []
        threads = [
            threading.Thread(
                target=_kill_round, args=(script, t, str(tmp_path / t), fracs[t][r], log), daemon=True
            )
            for t in targets
        ]
        for th in threads:
            th.start()
        for th in threads:
            th.join(240)
        assert not log, log
        for t in targets:
            got = E.run_artefact(_artefact(str(tmp_path / t), t), _feeds(), t, allow_pickle=True)["logits"]
            assert any(np.allclose(got, ref, atol=1e-4) for ref in refs), (t, r, fracs[t][r])
    # a follow-up export sweeps what the killed writers left, and leaves nothing of its own
    model = random_model(gpt2_config(layers=1), seed=0)
    for t in targets:
        tw.export(model, FEATURE, t, tmp_path / t)
    assert io.leftovers(str(tmp_path)) == []
    for t in targets:
        assert io.leftovers(str(tmp_path / t)) == []
        got = E.run_artefact(_artefact(str(tmp_path / t), t), _feeds(), t, allow_pickle=True)["logits"]
        np.testing.assert_allclose(got, refs[0], atol=1e-4)
