"""compute_transition_scores against hand-built scores (Transformers 4.37)."""

import numpy as np

from tensorweave.frontends.generation import compute_transition_scores


def test_greedy_picks_each_generated_token_score():
    seq = np.array([[5, 1, 2], [5, 0, 0]])
    scores = [
        np.array([[0.1, 0.9, 0.0], [0.7, 0.2, 0.1]], np.float32),
        np.array([[0.3, 0.3, 0.4], [0.6, 0.3, 0.1]], np.float32),
    ]
    out = compute_transition_scores(seq, scores)
    np.testing.assert_allclose(out, [[0.9, 0.4], [0.7, 0.6]])
    norm = compute_transition_scores(seq, scores, normalize_logits=True)
    ls = lambda r: r - np.log(np.exp(r).sum())  # noqa: E731
    np.testing.assert_allclose(
        norm,
        [[ls(scores[0][0])[1], ls(scores[1][0])[2]], [ls(scores[0][1])[0], ls(scores[1][1])[0]]],
        rtol=1e-6,
    )


def test_beam_indices_route_rows_and_mask_unused_steps():
    # 2 beams, 3 steps; output row 0 came from beam 1 then beam 0 then beam 0; row 1 stopped after 2 steps
    V = 4
    rng = np.random.default_rng(0)
    scores = [rng.standard_normal((2, V)).astype(np.float32) for _ in range(3)]
    seq = np.array([[9, 3, 1, 2], [9, 0, 2, 0]])
    beam = np.array([[1, 0, 0], [0, 1, -1]])
    out = compute_transition_scores(seq, scores, beam)
    expect = [[scores[0][1, 3], scores[1][0, 1], scores[2][0, 2]], [scores[0][0, 0], scores[1][1, 2], 0.0]]
    np.testing.assert_allclose(out, expect, rtol=1e-6)
    # a column no row uses is cut (max_beam_length = 2)
    out = compute_transition_scores(seq[:, :3], scores, np.array([[1, 0, -1], [0, -1, -1]]))
    assert out.shape == (2, 2)
    np.testing.assert_allclose(out, [[scores[0][1, 3], scores[1][0, 1]], [scores[0][0, 0], 0.0]], rtol=1e-6)
