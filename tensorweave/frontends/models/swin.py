"""Swin Transformer, written once against ``xp``: a windowed vision encoder of the ``vit.py`` kind
(``forward(params, cfg, pixel_values, head=...)``, heads ``default`` and ``image-classification``).

Stem: the image is zero-padded on the right / bottom to a multiple of ``patch_size``, then
``h = LayerNorm(conv(x, k = stride = patch_size))`` flattened row-major to ``[b, H * W, C]`` (plus
``position_embeddings`` with ``use_absolute_embeddings``). Stage ``i`` (width ``embed_dim * 2**i``,
``depths[i]`` layers, ``num_heads[i]`` heads) runs layers
``a = h + o(WMSA(LN_before(h)))``, ``h = a + fc2(act(fc1(LN_after(a))))``; between stages, patch
merging ``h = reduction(LN(concat(x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2])))``
on the ``[H, W, C]`` grid (zero-padded to even sides first; ``reduction`` 4C -> 2C, no bias).

Window attention on a grid ``H x W`` with window ``M`` (``window_size``; when ``min(H, W) <= M``
the window is ``min(H, W)`` and nothing shifts) and shift ``s`` (``M // 2`` on odd layers, else 0):
the normed grid is zero-padded to ``Hp x Wp`` (multiples of ``M``), rolled by ``-s`` on both axes,
cut into ``M x M`` windows (row-major windows, row-major tokens) and each window attends
``softmax(q k^T / sqrt(d) + B + mask) v``. ``B[h, i, j] = table[(y_i - y_j + M - 1) (2M - 1) +
(x_i - x_j + M - 1), h]``; with a shift, ``mask[i, j] = -100`` when tokens ``i`` and ``j`` lie in
different regions of the rolled grid (per axis: ``[0, n - M)``, ``[n - M, n - s)``,
``[n - s, n)``), else 0. The windows are rolled back by ``+s`` and the padding is dropped. Pad,
roll and partition are one static gather (:func:`window_index`) and its inverse.

``last_hidden_state = LayerNorm(h) [b, L, C]``, ``pooler_output = mean_L(last_hidden_state)``,
``logits = classifier(pooler_output)``; ``hidden_states``: the stem's and every stage's output
(after its merging). Checkpoint names are Hugging Face's saved ones
(``swin.encoder.layers.{i}.blocks.{j}.attention.self.query``, ``attention.output.dense``,
``intermediate.dense``, ``output.dense``, ``attention.self.relative_position_bias_table``,
``downsample.reduction`` / ``downsample.norm``); a live transformers v5 model's (``q_proj``,
``mlp.fc1``, ...) are mapped to them by :func:`file_names`."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...ir import array_namespace
from .attention import attend, default_scale
from .config import SwinConfig
from .gpt2 import activation
from .vit import check_head, check_pixel_values
from .weights import ParamView

BASE_PREFIX = "swin."
IGNORED_SUFFIXES: tuple[str, ...] = ("relative_position_index",)
STEM_EPS = 1e-5  # the stem's and the merging LayerNorms' eps (Hugging Face's default, not the config's)
MASKED = -100.0  # the shift mask's score offset (Hugging Face's)

# transformers v5 live names -> saved names, inside ``blocks.{j}.``
_LIVE = {
    "attention.q_proj.": "attention.self.query.",
    "attention.k_proj.": "attention.self.key.",
    "attention.v_proj.": "attention.self.value.",
    "attention.o_proj.": "attention.output.dense.",
    "attention.relative_position_bias.relative_position_bias_table": "attention.self.relative_position_bias_table",
    "mlp.fc1.": "intermediate.dense.",
    "mlp.fc2.": "output.dense.",
}


def file_names(params: dict[str, Any]) -> dict[str, Any]:
    """A live transformers v5 state dict under the names checkpoints are saved with."""
    out = {}
    for k, v in params.items():
        for live, saved in _LIVE.items():
            if ".blocks." in k and live in k:
                k = k.replace(live, saved)
                break
        out[k] = v
    return out


def _hw(value: Any) -> tuple[int, int]:
    """A validated ``(height, width)`` config pair."""
    return (int(value[0]), int(value[1]))


def parameter_shapes(cfg: SwinConfig, head: str = "default") -> dict[str, tuple]:
    check_head(head)
    p = cfg.base_prefix
    e = p + "embeddings."
    d0 = cfg.embed_dim
    shapes: dict[str, tuple] = {
        e + "patch_embeddings.projection.weight": (d0, cfg.num_channels, *_hw(cfg.patch_size)),
        e + "patch_embeddings.projection.bias": (d0,),
        e + "norm.weight": (d0,),
        e + "norm.bias": (d0,),
    }
    if cfg.use_absolute_embeddings:
        (ih, iw), (ph, pw) = _hw(cfg.image_size), _hw(cfg.patch_size)
        gh, gw = ih // ph, iw // pw
        shapes[e + "position_embeddings"] = (1, gh * gw, d0)
    m = cfg.window_size
    for i, (depth, heads) in enumerate(zip(cfg.depths, cfg.num_heads)):
        d, ff = cfg.stage_dim(i), int(cfg.mlp_ratio * cfg.stage_dim(i))
        for j in range(depth):
            lp = f"{p}encoder.layers.{i}.blocks.{j}."
            for name, shape in (
                ("attention.self.query", (d, d)),
                ("attention.self.key", (d, d)),
                ("attention.self.value", (d, d)),
                ("attention.output.dense", (d, d)),
                ("intermediate.dense", (ff, d)),
                ("output.dense", (d, ff)),
            ):
                shapes[lp + name + ".weight"] = shape
                if cfg.qkv_bias or not name.startswith("attention.self."):
                    shapes[lp + name + ".bias"] = (shape[0],)
            for name in ("layernorm_before", "layernorm_after"):
                shapes.update({lp + name + ".weight": (d,), lp + name + ".bias": (d,)})
            shapes[lp + "attention.self.relative_position_bias_table"] = ((2 * m - 1) ** 2, heads)
        if i < len(cfg.depths) - 1:
            dp = f"{p}encoder.layers.{i}.downsample."
            shapes.update(
                {
                    dp + "reduction.weight": (2 * d, 4 * d),
                    dp + "norm.weight": (4 * d,),
                    dp + "norm.bias": (4 * d,),
                }
            )
    c = cfg.hidden_size
    shapes.update({p + "layernorm.weight": (c,), p + "layernorm.bias": (c,)})
    if head == "image-classification":
        shapes.update({"classifier.weight": (cfg.num_labels, c), "classifier.bias": (cfg.num_labels,)})
    return shapes


def _linear(xp: Any, P: Any, name: str, x: Any) -> Any:
    y = xp.matmul(x, xp.permute_dims(P[name + ".weight"], (1, 0)))
    return y + P[name + ".bias"] if (name + ".bias") in P else y


def _norm(xp: Any, P: Any, name: str, x: Any, eps: float) -> Any:
    return xp.layer_norm(x, P[name + ".weight"], P[name + ".bias"], eps=eps)


def window_index(grid: tuple[int, int], window: int, shift: int) -> tuple[np.ndarray, np.ndarray]:
    """``(gather, scatter)`` for a ``H x W`` grid: ``gather[k]`` is the token (``H * W`` = the
    zero row) at position ``k`` of the padded, rolled-by-``-shift``, window-partitioned order;
    ``scatter[t]`` is where token ``t`` lands in that order."""
    h, w = grid
    hp, wp = -(-h // window) * window, -(-w // window) * window
    ys, xs = np.meshgrid(np.arange(hp), np.arange(wp), indexing="ij")
    ys, xs = (ys + shift) % hp, (xs + shift) % wp  # rolled grid position -> padded grid position
    src = np.where((ys < h) & (xs < w), ys * w + xs, h * w)
    gather = _partition(src, window).reshape(-1)
    scatter = np.empty(h * w, np.int64)
    real = gather < h * w
    scatter[gather[real]] = np.nonzero(real)[0]
    return gather.astype(np.int64), scatter


def _partition(grid: np.ndarray, m: int) -> np.ndarray:
    """``[Hp, Wp]`` -> ``[num_windows, m * m]``: row-major windows of row-major tokens."""
    hp, wp = grid.shape
    return grid.reshape(hp // m, m, wp // m, m).transpose(0, 2, 1, 3).reshape(-1, m * m)


def shift_mask(padded: tuple[int, int], window: int, shift: int) -> np.ndarray:
    """``[num_windows, M*M, M*M]``: 0 where both tokens lie in the same region of the rolled grid,
    ``-100`` elsewhere (see the module docstring)."""
    hp, wp = padded

    def region(n: int) -> np.ndarray:
        i = np.arange(n)
        return (i >= n - window).astype(np.int64) + (i >= n - shift).astype(np.int64)

    labels = _partition(region(hp)[:, None] * 3 + region(wp)[None, :], window)
    return np.where(labels[:, :, None] == labels[:, None, :], 0.0, MASKED).astype(np.float32)


def relative_index(window: int) -> np.ndarray:
    """``[M*M * M*M]`` table rows: ``(y_i - y_j + M - 1) (2M - 1) + (x_i - x_j + M - 1)``."""
    grid_y, grid_x = np.meshgrid(np.arange(window), np.arange(window), indexing="ij")
    ys, xs = grid_y.reshape(-1), grid_x.reshape(-1)
    rows = (ys[:, None] - ys[None, :] + window - 1) * (2 * window - 1) + (
        xs[:, None] - xs[None, :] + window - 1
    )
    return rows.reshape(-1).astype(np.int64)


def stage_window(cfg: SwinConfig, grid: tuple[int, int]) -> int:
    """The stage's window: ``window_size``, or ``min(H, W)`` when the grid is that small (Hugging
    Face's rule; a smaller window than the bias table's is refused)."""
    m = cfg.window_size
    if min(grid) < m:
        raise ValueError(
            f"swin: a stage grid {list(grid)} is smaller than `window_size` ({m}); "
            "use a larger image or a smaller window_size"
        )
    return m


def _attention(xp: Any, P: Any, cfg: SwinConfig, lp: str, x: Any, grid: tuple, heads: int, shift: int) -> Any:
    """Shifted-window self-attention of the normed tokens ``x [b, H * W, C]`` (module docstring)."""
    m = stage_window(cfg, grid)
    gather, scatter = window_index(grid, m, shift)
    b, c = x.shape[0], x.shape[2]
    n, hd = m * m, c // heads
    nw = gather.shape[0] // n
    x = xp.concat([x, xp.zeros_like(x[:, :1])], axis=1)
    win = xp.take(x, xp.asarray(gather), axis=1)  # [b, nw * n, C]

    def split(t: Any) -> Any:  # [b, nw * n, C] -> [b, nw * heads, n, hd]
        t = xp.permute_dims(xp.reshape(t, (b, nw, n, heads, hd)), (0, 1, 3, 2, 4))
        return xp.reshape(t, (b, nw * heads, n, hd))

    q, k, v = (split(_linear(xp, P, lp + "attention.self." + r, win)) for r in ("query", "key", "value"))
    table = P[lp + "attention.self.relative_position_bias_table"]
    bias = xp.permute_dims(
        xp.reshape(xp.take(table, xp.asarray(relative_index(m)), axis=0), (n, n, heads)), (2, 0, 1)
    )
    bias = xp.broadcast_to(bias[None], (nw, heads, n, n))
    if shift:
        hp, wp = -(-grid[0] // m) * m, -(-grid[1] // m) * m
        bias = bias + xp.asarray(shift_mask((hp, wp), m, shift))[:, None]
    bias = xp.reshape(bias, (1, nw * heads, n, n))
    ctx = attend(q, k, v, xp.ones((b, n), dtype=xp.int64), 0, default_scale(hd), causal=False, bias=bias)
    ctx = xp.reshape(xp.permute_dims(xp.reshape(ctx, (b, nw, heads, n, hd)), (0, 1, 3, 2, 4)), (b, nw * n, c))
    out = _linear(xp, P, lp + "attention.output.dense", ctx)
    return xp.take(out, xp.asarray(scatter), axis=1)


def _layer(xp: Any, P: Any, cfg: SwinConfig, lp: str, h: Any, grid: tuple, heads: int, shift: int) -> Any:
    """``a = h + WMSA(LN_before(h))``, ``h = a + fc2(act(fc1(LN_after(a))))``."""
    eps = cfg.layer_norm_eps
    a = h + _attention(xp, P, cfg, lp, _norm(xp, P, lp + "layernorm_before", h, eps), grid, heads, shift)
    x = activation(
        xp,
        cfg.hidden_act,
        _linear(xp, P, lp + "intermediate.dense", _norm(xp, P, lp + "layernorm_after", a, eps)),
    )
    return a + _linear(xp, P, lp + "output.dense", x)


def merge_index(grid: tuple[int, int]) -> np.ndarray:
    """Tokens (``H * W`` = the zero row) of each merged patch, ``[H2 * W2 * 4]`` in the order
    ``(0, 0), (1, 0), (0, 1), (1, 1)`` (row offset, column offset)."""
    h, w = grid
    h2, w2 = -(-h // 2), -(-w // 2)
    ys, xs = np.meshgrid(np.arange(h2) * 2, np.arange(w2) * 2, indexing="ij")
    parts = []
    for dy, dx in ((0, 0), (1, 0), (0, 1), (1, 1)):
        y, x = ys + dy, xs + dx
        parts.append(np.where((y < h) & (x < w), y * w + x, h * w).reshape(-1))
    return np.stack(parts, axis=1).reshape(-1).astype(np.int64)


def _merge(xp: Any, P: Any, name: str, h: Any, grid: tuple) -> Any:
    """Patch merging: ``reduction(LN(concat of the four 2 x 2 neighbours))``."""
    b, c = h.shape[0], h.shape[2]
    x = xp.concat([h, xp.zeros_like(h[:, :1])], axis=1)
    x = xp.take(x, xp.asarray(merge_index(grid)), axis=1)
    x = xp.reshape(x, (b, -(-grid[0] // 2) * -(-grid[1] // 2), 4 * c))
    return _linear(xp, P, name + "reduction", _norm(xp, P, name + "norm", x, STEM_EPS))


def embed(xp: Any, P: Any, cfg: SwinConfig, pixel_values: Any) -> tuple[Any, tuple[int, int]]:
    """``(LayerNorm(patches) [+ positions] [b, H * W, C], (H, W))``, the image zero-padded on the
    right / bottom to the patch multiple."""
    e = cfg.base_prefix + "embeddings."
    ph, pw = _hw(cfg.patch_size)
    height, width = pixel_values.shape[2], pixel_values.shape[3]
    pads = (0, 0, -height % ph, -width % pw)
    proj = e + "patch_embeddings.projection."
    x = xp.conv(pixel_values, P[proj + "weight"], P[proj + "bias"], strides=cfg.patch_size, pads=pads)
    b, c, gh, gw = x.shape
    h = _norm(xp, P, e + "norm", xp.permute_dims(xp.reshape(x, (b, c, gh * gw)), (0, 2, 1)), STEM_EPS)
    if cfg.use_absolute_embeddings:
        table = P[e + "position_embeddings"]
        if table.shape[1] != gh * gw:
            raise ValueError(
                f"swin with use_absolute_embeddings takes the config's image_size {list(_hw(cfg.image_size))}, "
                f"got an image of {[height, width]}"
            )
        h = h + table
    return h, (gh, gw)


def encode(params: Any, cfg: SwinConfig, pixel_values: Any) -> tuple[Any, tuple]:
    """``(last_hidden_state [b, L, C], hidden_states)``: the stem's and every stage's output."""
    xp = array_namespace(pixel_values)
    P = ParamView(params)
    check_pixel_values(pixel_values, cfg.num_channels)
    p = cfg.base_prefix
    h, grid = embed(xp, P, cfg, pixel_values)
    hidden = [h]
    for i, (depth, heads) in enumerate(zip(cfg.depths, cfg.num_heads)):
        small = min(grid) <= cfg.window_size
        for j in range(depth):
            shift = 0 if (j % 2 == 0 or small) else cfg.window_size // 2
            h = _layer(xp, P, cfg, f"{p}encoder.layers.{i}.blocks.{j}.", h, grid, heads, shift)
        if i < len(cfg.depths) - 1:
            h = _merge(xp, P, f"{p}encoder.layers.{i}.downsample.", h, grid)
            grid = (-(-grid[0] // 2), -(-grid[1] // 2))
        hidden.append(h)
    last = _norm(xp, P, p + "layernorm", h, cfg.layer_norm_eps)
    return last, tuple(hidden)


def forward(
    params: dict,
    cfg: SwinConfig,
    pixel_values: Any,
    head: str = "default",
    output_hidden_states: bool = False,
) -> dict:
    """The ``head``'s outputs (see the module docstring), plus ``hidden_states`` when asked."""
    check_head(head)
    xp = array_namespace(pixel_values)
    last, hidden = encode(params, cfg, pixel_values)
    pooled = xp.mean(last, axis=1)
    if head == "default":
        out = {"last_hidden_state": last, "pooler_output": pooled}
    else:
        out = {"logits": _linear(xp, ParamView(params), "classifier", pooled)}
    if output_hidden_states:
        out["hidden_states"] = hidden
    return out
