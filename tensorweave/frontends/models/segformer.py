"""SegFormer (MiT encoder + all-MLP decoder), written once against ``xp``: a vision encoder of the
``vit.py`` kind (``forward(params, cfg, pixel_values, head=...)``) with heads ``default``,
``image-classification`` and ``semantic-segmentation``.

Stage ``i`` (width ``C = hidden_sizes[i]``, ``heads = num_attention_heads[i]``, ``r =
sr_ratios[i]``): overlapping patch embedding ``h = LN(conv(x, k = patch_sizes[i], stride =
strides[i], pad = k // 2))`` flattened row-major to ``[b, H * W, C]``; ``depths[i]`` layers
``a = h + o(attn(LN_1(h)))``, ``h = a + fc2(act(dwconv_3x3(fc1(LN_2(a)))))`` (``dwconv``:
depthwise, padding 1, with bias, on the ``[H, W]`` grid; hidden width ``C * mlp_ratios[i]``);
``attn``: queries from every token, keys / values from ``LN_sr(conv(x, k = stride = r))`` when
``r > 1`` (else from every token), ``softmax(q k^T / sqrt(d)) v``; then the stage LayerNorm and
a reshape to ``[b, C, H, W]`` (the last stage stays ``[b, H * W, C]`` when
``reshape_last_stage`` is false). Every LayerNorm has eps 1e-5 (Hugging Face's default; the
config's ``layer_norm_eps`` is unused there too).

Heads: ``default`` -> ``last_hidden_state`` (the last stage's output); ``image-classification``
-> ``logits = classifier(mean_HW(last))``; ``semantic-segmentation`` -> ``logits [b, num_labels,
H_0, W_0]`` from the decode head: each stage's map is projected by ``linear_c.{i}`` to
``decoder_hidden_size`` channels, resized bilinearly (``align_corners = False``, the IR's
``resize`` ``linear``) to the first stage's grid, concatenated last stage first, fused by a 1x1
conv without bias, BatchNorm (running statistics, eps 1e-5), ReLU, and a 1x1 ``classifier``
conv. ``hidden_states``: every stage's output. Names are those checkpoints are saved with
(``segformer.encoder.block.{i}.{j}.attention.self.query``, ``...attention.self.sr``,
``mlp.dense1``, ``mlp.dwconv.dwconv``, ``layer_norm_1``, ``decode_head.linear_c.{i}.proj``); a
live transformers v5 model's are mapped to them by :func:`file_names`."""

from __future__ import annotations

import re
from typing import Any

from ...ir import array_namespace
from .attention import attend, default_scale, merge_heads, split_heads
from .config import SegformerConfig
from .gpt2 import activation
from .vit import check_pixel_values
from .weights import ParamView, renamed

BASE_PREFIX = "segformer."
IGNORED_SUFFIXES: tuple[str, ...] = ("num_batches_tracked",)
HEADS = ("default", "image-classification", "semantic-segmentation")
EPS = 1e-5  # every LayerNorm's and the decode head's BatchNorm's eps (Hugging Face's defaults)

# transformers v5 live names -> saved names (applied in order)
_LIVE = [
    (re.compile(r"\.stages\.(\d+)\.patch_embeddings\."), r".encoder.patch_embeddings.\1."),
    (re.compile(r"\.stages\.(\d+)\.blocks\.(\d+)\."), r".encoder.block.\1.\2."),
    (re.compile(r"\.stages\.(\d+)\.layer_norm\."), r".encoder.layer_norm.\1."),
    (re.compile(r"attention\.sequence_reduction\.sequence_reduction\."), "attention.self.sr."),
    (re.compile(r"attention\.sequence_reduction\.layer_norm\."), "attention.self.layer_norm."),
    (re.compile(r"attention\.q_proj\."), "attention.self.query."),
    (re.compile(r"attention\.k_proj\."), "attention.self.key."),
    (re.compile(r"attention\.v_proj\."), "attention.self.value."),
    (re.compile(r"attention\.o_proj\."), "attention.output.dense."),
    (re.compile(r"mlp\.fc1\."), "mlp.dense1."),
    (re.compile(r"mlp\.fc2\."), "mlp.dense2."),
    (re.compile(r"\.layernorm_before\."), ".layer_norm_1."),
    (re.compile(r"\.layernorm_after\."), ".layer_norm_2."),
    (re.compile(r"^decode_head\.linear_projections\."), "decode_head.linear_c."),
]


def check_head(head: str) -> str:
    if head not in HEADS:
        raise ValueError(f"unknown vision head {head!r}; use one of {list(HEADS)}")
    return head


def file_names(params: dict[str, Any]) -> dict[str, Any]:
    """A live transformers v5 state dict under the names checkpoints are saved with."""
    return renamed(params, _LIVE)


def _ln(name: str, width: int) -> dict[str, tuple]:
    return {name + ".weight": (width,), name + ".bias": (width,)}


def parameter_shapes(cfg: SegformerConfig, head: str = "default") -> dict[str, tuple]:
    check_head(head)
    enc = cfg.base_prefix + "encoder."
    shapes: dict[str, tuple] = {}
    c_in = cfg.num_channels
    for i, c in enumerate(cfg.hidden_sizes):
        k, r, ff = cfg.patch_sizes[i], cfg.sr_ratios[i], int(c * cfg.mlp_ratios[i])
        pe = f"{enc}patch_embeddings.{i}."
        shapes.update(
            {pe + "proj.weight": (c, c_in, k, k), pe + "proj.bias": (c,), **_ln(pe + "layer_norm", c)}
        )
        for j in range(cfg.depths[i]):
            lp = f"{enc}block.{i}.{j}."
            for name, shape in (
                ("attention.self.query", (c, c)),
                ("attention.self.key", (c, c)),
                ("attention.self.value", (c, c)),
                ("attention.output.dense", (c, c)),
                ("mlp.dense1", (ff, c)),
                ("mlp.dense2", (c, ff)),
            ):
                shapes.update({lp + name + ".weight": shape, lp + name + ".bias": (shape[0],)})
            if r > 1:
                shapes.update(
                    {lp + "attention.self.sr.weight": (c, c, r, r), lp + "attention.self.sr.bias": (c,)}
                )
                shapes.update(_ln(lp + "attention.self.layer_norm", c))
            shapes.update(
                {lp + "mlp.dwconv.dwconv.weight": (ff, 1, 3, 3), lp + "mlp.dwconv.dwconv.bias": (ff,)}
            )
            shapes.update({**_ln(lp + "layer_norm_1", c), **_ln(lp + "layer_norm_2", c)})
        shapes.update(_ln(f"{enc}layer_norm.{i}", c))
        c_in = c
    n = cfg.num_labels
    if head == "image-classification":
        shapes.update({"classifier.weight": (n, c_in), "classifier.bias": (n,)})
    elif head == "semantic-segmentation":
        d, dh = cfg.decoder_hidden_size, "decode_head."
        for i, c in enumerate(cfg.hidden_sizes):
            shapes.update({f"{dh}linear_c.{i}.proj.weight": (d, c), f"{dh}linear_c.{i}.proj.bias": (d,)})
        shapes[dh + "linear_fuse.weight"] = (d, d * cfg.num_encoder_blocks, 1, 1)
        for stat in ("weight", "bias", "running_mean", "running_var"):
            shapes[dh + "batch_norm." + stat] = (d,)
        shapes.update({dh + "classifier.weight": (n, d, 1, 1), dh + "classifier.bias": (n,)})
    return shapes


def _linear(xp: Any, P: Any, name: str, x: Any) -> Any:
    return xp.matmul(x, xp.permute_dims(P[name + ".weight"], (1, 0))) + P[name + ".bias"]


def _norm(xp: Any, P: Any, name: str, x: Any) -> Any:
    return xp.layer_norm(x, P[name + ".weight"], P[name + ".bias"], eps=EPS)


def _tokens(xp: Any, x: Any) -> Any:
    """``[b, C, H, W] -> [b, H * W, C]``."""
    b, c, h, w = x.shape
    return xp.permute_dims(xp.reshape(x, (b, c, h * w)), (0, 2, 1))


def _grid(xp: Any, x: Any, hw: tuple[int, int]) -> Any:
    """``[b, H * W, C] -> [b, C, H, W]``."""
    b, _, c = x.shape
    return xp.reshape(xp.permute_dims(x, (0, 2, 1)), (b, c, *hw))


def _attention(xp: Any, P: Any, lp: str, x: Any, hw: tuple[int, int], heads: int, r: int) -> Any:
    """Efficient self-attention: keys / values from ``LN_sr(conv_r(x))`` when ``r > 1``."""
    a = lp + "attention."
    c = x.shape[2]
    kv = x
    if r > 1:
        kv = xp.conv(_grid(xp, x, hw), P[a + "self.sr.weight"], P[a + "self.sr.bias"], strides=r)
        kv = _norm(xp, P, a + "self.layer_norm", _tokens(xp, kv))
    hd = c // heads
    q = split_heads(_linear(xp, P, a + "self.query", x), heads, hd)
    k, v = (split_heads(_linear(xp, P, a + "self." + n, kv), heads, hd) for n in ("key", "value"))
    mask = xp.ones((kv.shape[0], kv.shape[1]), dtype=xp.int64)
    ctx = merge_heads(attend(q, k, v, mask, 0, default_scale(hd), causal=False))
    return _linear(xp, P, a + "output.dense", ctx)


def _mix_ffn(xp: Any, P: Any, cfg: SegformerConfig, lp: str, x: Any, hw: tuple[int, int]) -> Any:
    """``dense2(act(dwconv_3x3(dense1(x))))``."""
    m = lp + "mlp."
    y = _linear(xp, P, m + "dense1", x)
    y = xp.conv(
        _grid(xp, y, hw),
        P[m + "dwconv.dwconv.weight"],
        P[m + "dwconv.dwconv.bias"],
        pads=1,
        groups=y.shape[2],
    )
    return _linear(xp, P, m + "dense2", activation(xp, cfg.hidden_act, _tokens(xp, y)))


def encode(params: Any, cfg: SegformerConfig, pixel_values: Any) -> tuple[Any, tuple]:
    """``(last_hidden_state, hidden_states)``: every stage's output, ``[b, C, H, W]`` (the last
    ``[b, H * W, C]`` without ``reshape_last_stage``)."""
    xp = array_namespace(pixel_values)
    P = ParamView(params)
    check_pixel_values(pixel_values, cfg.num_channels)
    enc = cfg.base_prefix + "encoder."
    x, hidden = pixel_values, []
    last_stage = cfg.num_encoder_blocks - 1
    for i, depth in enumerate(cfg.depths):
        pe = f"{enc}patch_embeddings.{i}."
        k = cfg.patch_sizes[i]
        x = xp.conv(x, P[pe + "proj.weight"], P[pe + "proj.bias"], strides=cfg.strides[i], pads=k // 2)
        hw = (x.shape[2], x.shape[3])
        h = _norm(xp, P, pe + "layer_norm", _tokens(xp, x))
        for j in range(depth):
            lp = f"{enc}block.{i}.{j}."
            h = h + _attention(
                xp,
                P,
                lp,
                _norm(xp, P, lp + "layer_norm_1", h),
                hw,
                cfg.num_attention_heads[i],
                cfg.sr_ratios[i],
            )
            h = h + _mix_ffn(xp, P, cfg, lp, _norm(xp, P, lp + "layer_norm_2", h), hw)
        h = _norm(xp, P, f"{enc}layer_norm.{i}", h)
        x = _grid(xp, h, hw) if (i < last_stage or cfg.reshape_last_stage) else h
        hidden.append((x, hw))
    return x, tuple(hidden)


def decode_head(xp: Any, P: Any, cfg: SegformerConfig, hidden: tuple) -> Any:
    """The all-MLP decode head's ``logits [b, num_labels, H_0, W_0]`` (module docstring)."""
    dh = "decode_head."
    size = hidden[0][1]
    maps = []
    for i, (x, hw) in enumerate(hidden):
        tokens = x if x.ndim == 3 else _tokens(xp, x)
        y = _grid(xp, _linear(xp, P, f"{dh}linear_c.{i}.proj", tokens), hw)
        maps.append(y if hw == size else xp.resize(y, size, mode="linear"))
    y = xp.conv(xp.concat(maps[::-1], axis=1), P[dh + "linear_fuse.weight"])
    bn = dh + "batch_norm."
    scale = P[bn + "weight"] / xp.sqrt(P[bn + "running_var"] + EPS)
    shift = P[bn + "bias"] - P[bn + "running_mean"] * scale
    y = xp.maximum(y * scale[:, None, None] + shift[:, None, None], 0.0)
    return xp.conv(y, P[dh + "classifier.weight"], P[dh + "classifier.bias"])


def forward(
    params: dict,
    cfg: SegformerConfig,
    pixel_values: Any,
    head: str = "default",
    output_hidden_states: bool = False,
) -> dict:
    """The ``head``'s outputs (see the module docstring), plus ``hidden_states`` when asked."""
    check_head(head)
    xp = array_namespace(pixel_values)
    P = ParamView(params)
    last, hidden = encode(P, cfg, pixel_values)
    if head == "default":
        out = {"last_hidden_state": last}
    elif head == "image-classification":
        pooled = xp.mean(last, axis=1) if last.ndim == 3 else xp.mean(last, axis=(2, 3))
        out = {"logits": _linear(xp, P, "classifier", pooled)}
    else:
        out = {"logits": decode_head(xp, P, cfg, hidden)}
    if output_hidden_states:
        out["hidden_states"] = tuple(x for x, _ in hidden)
    return out
