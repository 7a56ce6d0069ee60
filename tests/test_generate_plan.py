"""resolve_plan: one resolution of (model defaults, GenerationConfig, kwargs) per call, every error
before tracing; the one program cache is thread-safe (four threads' first calls build once)."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

import tensorweave as tw
from tensorweave.frontends.generation.beam_search import BeamConfig, GroupBeamConfig
from tensorweave.frontends.models import PARAMETER_SHAPES, config_from_dict
from tensorweave.generation import GenerationPlan, Mode, resolve_plan
from tensorweave.generation.programs import PROGRAMS
from tensorweave.models import Model

VOCAB, EOS, PAD, BOS = 40, 3, 2, 1
SHAPE = (2, 5)


def tiny(eos=EOS, pad=PAD, seed=0) -> Model:
    special = {
        k: v for k, v in dict(eos_token_id=eos, pad_token_id=pad, bos_token_id=BOS).items() if v is not None
    }
    cfg = config_from_dict(
        dict(
            model_type="llama",
            vocab_size=VOCAB,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=64,
            **special,
        )
    )
    rng = np.random.default_rng(seed)
    params = {
        k: (rng.standard_normal(s) * 0.3).astype(np.float32)
        for k, s in PARAMETER_SHAPES["llama"](cfg).items()
    }
    return Model(cfg, params)


MODEL = tiny()


def plan(model=MODEL, shape=SHAPE, config=None, **kwargs) -> GenerationPlan:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return resolve_plan(model, shape, config, {"max_new_tokens": 4, **kwargs})


MODES = {
    Mode.GREEDY: dict(),
    Mode.SAMPLE: dict(do_sample=True),
    Mode.BEAM: dict(num_beams=3),
    Mode.BEAM_SAMPLE: dict(num_beams=3, do_sample=True),
    Mode.GROUP_BEAM: dict(num_beams=4, num_beam_groups=2, diversity_penalty=1.0),
    Mode.CONTRASTIVE: dict(penalty_alpha=0.6, top_k=4),
}


@pytest.mark.parametrize("mode", list(MODES), ids=lambda m: m.value)
def test_mode_selection(mode):
    trace = False if mode is Mode.GROUP_BEAM else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = resolve_plan(MODEL, SHAPE, None, dict(max_new_tokens=4, **MODES[mode]), trace=trace)
    assert p.mode is mode
    assert p.do_sample == (mode in (Mode.SAMPLE, Mode.BEAM_SAMPLE))
    assert (p.warpers is not None) == p.do_sample
    assert (p.beam is not None) == (mode in (Mode.BEAM, Mode.BEAM_SAMPLE, Mode.GROUP_BEAM))


def test_contrastive_needs_alpha_and_top_k_above_one():
    assert plan(penalty_alpha=0.0, top_k=4).mode is Mode.GREEDY
    assert plan(penalty_alpha=0.6, top_k=1).mode is Mode.GREEDY


@pytest.mark.parametrize(
    "given,expected", [(7, (7,)), ([7, 9], (7, 9)), ((9,), (9,)), (None, (EOS,))], ids=str
)
def test_eos_normalised_once(given, expected):
    kw = {} if given is None else dict(eos_token_id=given)
    p = plan(**kw)
    assert p.eos == expected and isinstance(p.eos, tuple)
    assert all(type(e) is int for e in p.eos)


def test_eos_from_the_model_config_and_no_eos():
    assert plan(tiny(eos=11)).eos == (11,)
    no_eos = tiny()
    no_eos.config.eos_token_id = None
    assert plan(no_eos, config=tw.GenerationConfig(pad_token_id=PAD)).eos == ()
    # a generation_config without eos takes the model's (spec/generation.md, model defaults)
    assert plan(config=tw.GenerationConfig(pad_token_id=PAD)).eos == (EOS,)


def test_pad_falls_back_to_eos_with_a_warning():
    with pytest.warns(
        UserWarning, match=r"Setting `pad_token_id` to `eos_token_id`:5 for open-end generation."
    ):
        p = resolve_plan(tiny(pad=None), SHAPE, None, dict(max_new_tokens=4, eos_token_id=[5, 6]))
    assert p.pad == 5
    bare = tiny(pad=None)
    bare.config.eos_token_id = None  # a generation_config's unset tokens come from the model config
    with pytest.raises(ValueError, match="needs `pad_token_id`"):
        resolve_plan(bare, SHAPE, tw.GenerationConfig(), dict(max_new_tokens=4))


def test_beam_config_is_built_once_with_the_call_values():
    p = plan(
        num_beams=4, num_return_sequences=2, length_penalty=0.5, early_stopping=True, eos_token_id=[3, 8]
    )
    assert type(p.beam) is BeamConfig
    assert p.beam == BeamConfig(
        batch_size=2,
        num_beams=4,
        vocab_size=VOCAB,
        prompt_len=5,
        max_length=9,
        eos_token_id=(3, 8),
        pad_token_id=PAD,
        length_penalty=0.5,
        early_stopping=True,
        num_return_sequences=2,
    )
    assert p.expand == 4 and p.max_length == 9 and p.prompt_len == 5
    g = resolve_plan(
        MODEL,
        SHAPE,
        None,
        dict(max_new_tokens=4, num_beams=6, num_beam_groups=3, diversity_penalty=1.0),
        trace=False,
    )
    assert type(g.beam) is GroupBeamConfig and g.beam.num_beams == 2
    assert plan().beam is None


def test_plan_key_and_processors():
    a, b = plan(repetition_penalty=1.5), plan(repetition_penalty=1.5)
    assert a.key == b.key and a.key != plan().key
    assert [type(p).__name__ for p in a.processors] == ["RepetitionPenaltyLogitsProcessor"]
    assert plan(max_new_tokens=6).max_length == 11


def test_bad_config_raises_before_any_tracing(monkeypatch):
    import tensorweave.generation.fused as fused

    def no_trace(*a, **k):
        raise AssertionError("traced before the config was validated")

    monkeypatch.setattr(fused, "trace", no_trace)
    monkeypatch.setattr(PROGRAMS, "get", no_trace)
    with pytest.raises(ValueError, match=r"model_kwargs` are not used by the model: \['max_new_token'\]"):
        tw.generate(MODEL, np.ones(SHAPE, np.int64), max_new_token=3)
    with pytest.raises(ValueError, match="has to be smaller or equal to `num_beams`"):
        tw.generate(MODEL, np.ones(SHAPE, np.int64), num_beams=2, num_return_sequences=3)
    with pytest.raises(ValueError, match="must exceed the prompt length"):
        tw.generate(MODEL, np.ones(SHAPE, np.int64), max_length=5)
    with pytest.raises(ValueError, match="group \\(diverse\\) beam search runs step-wise only"):
        tw.generate(MODEL, np.ones(SHAPE, np.int64), **MODES[Mode.GROUP_BEAM])
    with pytest.raises(ValueError, match="constrained beam search is not implemented"):
        tw.generate(MODEL, np.ones(SHAPE, np.int64), num_beams=2, constraints=[object()])


def test_four_threads_first_call_build_once_and_agree():
    model = tiny(seed=3)
    ids = np.random.default_rng(0).integers(4, VOCAB, size=SHAPE).astype(np.int64)
    kw = dict(backend="numpy", max_new_tokens=5, num_beams=2)
    results: list = [None] * 4
    errors: list = []
    barrier = threading.Barrier(4)

    def work(i):
        try:
            barrier.wait()
            results[i] = tw.generate(model, ids, **kw)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert model in PROGRAMS
    assert PROGRAMS.count(model) == 1  # one fused program, built once
    serial = tw.generate(tiny(seed=3), ids, **kw)
    for r in results:
        np.testing.assert_array_equal(r, serial)
