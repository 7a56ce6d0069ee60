"""The vision transformers, written once against ``xp``: ViT, DeiT, BEiT and Data2Vec-Vision are
config switches of this module (class attributes and properties of :class:`~.config.ViTConfig`
and its subclasses :class:`~.config.DeiTConfig`, :class:`~.config.BeitConfig`,
:class:`~.config.Data2VecVisionConfig`; BEiT's: no key bias, optional absolute positions, layer
scale ``lambda_1`` / ``lambda_2`` on the residual branches, relative position biases added to the
scores (:func:`relative_bias`), mean pooling ``pooler.layernorm(mean(h[:, 1:]))`` without the
final LayerNorm, the classifier on the pooler).

Input ``pixel_values [b, c, H, W]`` (float32, the image size of the config). Embeddings:
``patches = conv(x, W_p, stride = kernel = patch_size) + b_p`` flattened to ``[b, n, d]``
(``n = (H / p_h) * (W / p_w)``, row-major over the patch grid), then
``h = concat(cls, [dist,] patches) + position_embeddings`` (DeiT adds a distillation token, so
its position table has ``n + 2`` rows). Per layer (pre-norm)
``a = h + o(attn(LayerNorm_before(h)))``, ``h = a + fc2(act(fc1(LayerNorm_after(a))))`` with
unmasked bidirectional attention ``softmax(q k^T / sqrt(d_head)) v``; the output is
``last_hidden_state = LayerNorm(h)``. ``pooler_output = pooler_act(pooler.dense(last[:, 0]))``.

YOLOS (:class:`~.config.YolosConfig`, heads named by ``yolos.py``): ``h = concat(cls, patches,
det) + position_embeddings`` with ``num_detection_tokens`` learned tokens ``det`` after the
patches; with ``use_mid_position_embeddings`` layer ``i < L - 1`` adds its own table
``encoder.mid_position_embeddings[i]`` to its output (the layer's hidden state is taken before the
add; transformers v5 names it ``encoder.interpolation.mid_position_embeddings`` live).
``object-detection``: on ``t = last[:, -num_detection_tokens:]``,
``logits = mlp_c(t)`` (``num_labels + 1`` classes, the last one "no object") and
``pred_boxes = sigmoid(mlp_b(t))`` (``(cx, cy, w, h)`` in [0, 1]), each MLP three linears with
ReLU between them (``class_labels_classifier.layers.{0,1,2}``, ``bbox_predictor.layers.{0,1,2}``);
``last_hidden_state`` too, as Hugging Face returns it.

Heads (``head=``; outputs named as in Hugging Face):

- ``default``: ``last_hidden_state [b, n + 1 (+ 1), d]`` and ``pooler_output [b, pooler_output_size]``;
- ``image-classification``: ViT ``logits = classifier(last[:, 0])``; DeiT
  (``DeiTForImageClassificationWithTeacher``)
  ``logits = (cls_classifier(last[:, 0]) + distillation_classifier(last[:, 1])) / 2``.

Parameter names are those checkpoints are saved with (``vit.encoder.layer.{i}.attention.attention.query``,
``...attention.output.dense``, ``intermediate.dense``, ``output.dense``, ``layernorm_before`` /
``layernorm_after``); a live transformers v5 model's module names (``layers.{i}.attention.q_proj``,
``mlp.fc1``, ...) are mapped to them by :func:`file_names`. Dropout is the identity (inference).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from ...ir import array_namespace
from .attention import attend, default_scale, merge_heads, split_heads
from .config import ViTConfig
from .gpt2 import activation
from .weights import ParamView

BASE_PREFIX = "vit."  # ViT's; each type's is ``cfg.base_prefix``
IGNORED_SUFFIXES: tuple[str, ...] = ()
HEADS = ("default", "image-classification")

# role -> name inside ``encoder.layer.{i}.``
LAYER_NAMES = {
    "q": "attention.attention.query",
    "k": "attention.attention.key",
    "v": "attention.attention.value",
    "o": "attention.output.dense",
    "ln1": "layernorm_before",
    "ln2": "layernorm_after",
    "ff1": "intermediate.dense",
    "ff2": "output.dense",
}
# transformers v5 live module names -> checkpoint names, inside a layer
_LIVE_LAYER = {
    "attention.q_proj": LAYER_NAMES["q"],
    "attention.k_proj": LAYER_NAMES["k"],
    "attention.v_proj": LAYER_NAMES["v"],
    "attention.o_proj": LAYER_NAMES["o"],
    "mlp.fc1": LAYER_NAMES["ff1"],
    "mlp.fc2": LAYER_NAMES["ff2"],
    "relative_position_bias": "attention.attention.relative_position_bias",  # beit
}
_LIVE = re.compile(r"^(.*?)layers\.(\d+)\.(.+)$")
REL_TABLE = "relative_position_bias.relative_position_bias_table"


def check_head(head: str, heads: tuple[str, ...] = HEADS) -> str:
    """``head`` if it is one of ``heads``, else a one-line ValueError listing them."""
    if head not in heads:
        raise ValueError(f"unknown vision head {head!r}; use one of {list(heads)}")
    return head


def check_pixel_values(
    pixel_values: Any,
    num_channels: int,
    size: tuple | None = None,
    size_name: str = "image_size",
    config: str = "config",
) -> None:
    """A one-line ValueError unless ``pixel_values`` is ``[batch, num_channels, height, width]``
    with ``(height, width) == size`` when the model takes one image size (``size_name`` and
    ``config`` name the setting in the message)."""
    if size is None:
        if pixel_values.ndim != 4 or pixel_values.shape[1] != num_channels:
            raise ValueError(
                f"pixel_values must be [batch, {num_channels}, height, width] (num_channels), "
                f"got {list(pixel_values.shape)}"
            )
        return
    want = (num_channels, *size)
    if pixel_values.ndim != 4 or tuple(pixel_values.shape[1:]) != want:
        raise ValueError(
            f"pixel_values must be [batch, {', '.join(map(str, want))}] (num_channels, {size_name}), "
            f"got {list(pixel_values.shape)}; resize the image to the {config}'s {size_name}"
        )


def _detection_shapes(cfg: ViTConfig) -> dict[str, tuple]:
    """YOLOS' class and box MLPs: ``d -> d -> d -> num_labels + 1`` and ``d -> d -> d -> 4``."""
    d, labels = cfg.hidden_size, int(cfg.num_labels)  # type: ignore[arg-type]  # set by the config
    shapes: dict[str, tuple] = {}
    for name, out in (("class_labels_classifier", labels + 1), ("bbox_predictor", 4)):
        for i, (rows, cols) in enumerate(((d, d), (d, d), (out, d))):
            shapes.update({f"{name}.layers.{i}.weight": (rows, cols), f"{name}.layers.{i}.bias": (rows,)})
    return shapes


def file_names(params: dict[str, Any]) -> dict[str, Any]:
    """A live transformers v5 state dict under checkpoint names: ``layers.{i}.attention.q_proj``
    -> ``encoder.layer.{i}.attention.attention.query``, ``mlp.fc1`` -> ``intermediate.dense``, ...
    (names already in checkpoint form pass through)."""
    out = {}
    for k, v in params.items():
        m = _LIVE.match(k)
        if m is not None:
            prefix, i, rest = m.groups()
            for live, saved in _LIVE_LAYER.items():
                if rest.startswith(live + "."):
                    rest = saved + rest[len(live) :]
                    break
            k = f"{prefix}encoder.layer.{i}.{rest}"
        k = k.replace("shared_position_bias.", "encoder.relative_position_bias.")  # beit's shared table
        out[k] = v
    return out


def relative_position_index(window: tuple[int, int]) -> np.ndarray:
    """BEiT's table row for every (query, key) token pair, ``[T, T]`` with ``T = Wh * Ww + 1``:
    patches ``(y, x)`` and ``(y', x')`` read row ``(y - y' + Wh - 1) * (2 Ww - 1) + (x - x' + Ww - 1)``;
    with ``R = (2 Wh - 1) (2 Ww - 1)``, CLS -> patch reads ``R``, patch -> CLS ``R + 1``, CLS ->
    CLS ``R + 2``."""
    wh, ww = window
    ys, xs = np.meshgrid(np.arange(wh), np.arange(ww), indexing="ij")
    ys, xs = ys.reshape(-1), xs.reshape(-1)
    rows = (ys[:, None] - ys[None, :] + wh - 1) * (2 * ww - 1) + (xs[:, None] - xs[None, :] + ww - 1)
    r = (2 * wh - 1) * (2 * ww - 1)
    index = np.empty((wh * ww + 1,) * 2, np.int64)
    index[1:, 1:] = rows
    index[0, :], index[:, 0], index[0, 0] = r, r + 1, r + 2
    return index


def relative_bias(xp: Any, cfg: ViTConfig, table: Any) -> Any:
    """``[1, heads, T, T]`` from a ``[R + 3, heads]`` table. Hugging Face first resamples the
    ``R`` patch rows, viewed as a ``(2 Ww - 1) x (2 Wh - 1)`` grid, bilinearly to ``(2 Wh - 1) x
    (2 Ww - 1)`` (``half_pixel``, the IR's ``resize``): the identity for a square window, a
    transposing resample otherwise; we do the same."""
    wh, ww = cfg.grid
    gh, gw = 2 * wh - 1, 2 * ww - 1
    heads = cfg.num_attention_heads
    if gh != gw:
        grid = xp.permute_dims(xp.reshape(table[: gh * gw], (1, gw, gh, heads)), (0, 3, 1, 2))
        grid = xp.resize(grid, (gh, gw), mode="linear")
        flat = xp.reshape(xp.permute_dims(grid, (0, 2, 3, 1)), (gh * gw, heads))
        table = xp.concat([flat, table[gh * gw :]], axis=0)
    index = relative_position_index((wh, ww))
    t = index.shape[0]
    bias = xp.take(table, xp.asarray(index.reshape(-1)), axis=0)  # [T * T, heads]
    return xp.permute_dims(xp.reshape(bias, (t, t, heads)), (2, 0, 1))[None]


def parameter_shapes(cfg: ViTConfig, head: str = "default") -> dict[str, tuple]:
    """Hugging Face name -> shape of every parameter the ``head`` reads (the pooler only for
    ``default``, as ``*ForImageClassification`` has none)."""
    check_head(head, cfg.heads)
    d, ff, n = cfg.hidden_size, cfg.intermediate_size, cfg.num_labels
    p = cfg.base_prefix
    e = p + "embeddings."
    shapes: dict[str, tuple] = {
        e + "cls_token": (1, 1, d),
        e + "patch_embeddings.projection.weight": (d, cfg.num_channels, *cfg.patch_size),
        e + "patch_embeddings.projection.bias": (d,),
    }
    if cfg.absolute_positions:
        shapes[e + "position_embeddings"] = (1, cfg.num_tokens, d)
    if cfg.distilled:
        shapes[e + "distillation_token"] = (1, 1, d)
    if cfg.detection_tokens:
        shapes[e + "detection_tokens"] = (1, cfg.detection_tokens, d)
    if cfg.mid_positions:
        shapes[p + "encoder.mid_position_embeddings"] = (
            cfg.num_hidden_layers - 1,
            1,
            cfg.num_tokens,
            d,
        )
    wh, ww = cfg.grid
    table = ((2 * wh - 1) * (2 * ww - 1) + 3, cfg.num_attention_heads)
    shared, per_layer = cfg.relative_bias
    if shared:
        shapes[p + "encoder." + REL_TABLE] = table
    for i in range(cfg.num_hidden_layers):
        lp = f"{p}encoder.layer.{i}."
        for role, shape in (
            ("q", (d, d)),
            ("k", (d, d)),
            ("v", (d, d)),
            ("o", (d, d)),
            ("ff1", (ff, d)),
            ("ff2", (d, ff)),
        ):
            shapes[lp + LAYER_NAMES[role] + ".weight"] = shape
            biased = {"q": cfg.query_value_bias, "k": cfg.key_bias, "v": cfg.query_value_bias}.get(role, True)
            if biased:
                shapes[lp + LAYER_NAMES[role] + ".bias"] = (shape[0],)
        for role in ("ln1", "ln2"):
            shapes[lp + LAYER_NAMES[role] + ".weight"] = (d,)
            shapes[lp + LAYER_NAMES[role] + ".bias"] = (d,)
        if cfg.layer_scale:
            shapes.update({lp + "lambda_1": (d,), lp + "lambda_2": (d,)})
        if per_layer:
            shapes[lp + "attention.attention." + REL_TABLE] = table
    if not cfg.mean_pooling:
        shapes.update({p + "layernorm.weight": (d,), p + "layernorm.bias": (d,)})
    if cfg.pooler_style != "dense":  # beit: the pooler (a LayerNorm with mean pooling) feeds both heads
        if cfg.mean_pooling and (head != "default" or cfg.has_pooler):
            shapes.update({p + "pooler.layernorm.weight": (d,), p + "pooler.layernorm.bias": (d,)})
        if head != "default":
            shapes.update({"classifier.weight": (n, d), "classifier.bias": (n,)})
    elif head == "default":
        shapes.update(
            {
                p + "pooler.dense.weight": (cfg.pooler_output_size, d),
                p + "pooler.dense.bias": (cfg.pooler_output_size,),
            }
        )
    elif head == "object-detection":
        shapes.update(_detection_shapes(cfg))
    else:
        for name in classifier_names(cfg):
            shapes.update({name + ".weight": (n, d), name + ".bias": (n,)})
    return shapes


def classifier_names(cfg: ViTConfig) -> tuple[str, ...]:
    """The image-classification linears: ``classifier`` (on CLS), or DeiT's ``cls_classifier``
    and ``distillation_classifier`` (on CLS and on the distillation token)."""
    return ("cls_classifier", "distillation_classifier") if cfg.distilled else ("classifier",)


def _linear(xp: Any, P: Any, name: str, x: Any) -> Any:
    """``x @ W^T (+ b)``; the bias is optional (``qkv_bias = false``)."""
    y = xp.matmul(x, xp.permute_dims(P[name + ".weight"], (1, 0)))
    return y + P[name + ".bias"] if (name + ".bias") in P else y


def _layer_norm(xp: Any, P: Any, name: str, x: Any, eps: float) -> Any:
    return xp.layer_norm(x, P[name + ".weight"], P[name + ".bias"], eps=eps)


def embed(P: Any, cfg: ViTConfig, pixel_values: Any) -> Any:
    """``concat(cls, [dist,] patches[, det]) + position_embeddings`` (``[b, num_tokens, d]``)."""
    xp = array_namespace(pixel_values)
    e = cfg.base_prefix + "embeddings."
    proj = e + "patch_embeddings.projection."
    x = xp.conv(pixel_values, P[proj + "weight"], P[proj + "bias"], strides=cfg.patch_size)  # [b, d, gh, gw]
    b, d = x.shape[0], cfg.hidden_size
    patches = xp.permute_dims(xp.reshape(x, (b, d, cfg.grid[0] * cfg.grid[1])), (0, 2, 1))
    tokens = ["cls_token", "distillation_token"] if cfg.distilled else ["cls_token"]
    lead = [xp.broadcast_to(P[e + t], (b, 1, d)) for t in tokens]
    tail = (
        [xp.broadcast_to(P[e + "detection_tokens"], (b, cfg.detection_tokens, d))]
        if cfg.detection_tokens
        else []
    )
    h = xp.concat([*lead, patches, *tail], axis=1)
    return h + P[e + "position_embeddings"] if cfg.absolute_positions else h


def encode(params: dict, cfg: ViTConfig, pixel_values: Any) -> tuple[Any, tuple]:
    """``(last_hidden_state [b, num_tokens, d], hidden_states)``: ``hidden_states`` holds the
    embeddings and each layer's output (before the final LayerNorm), as Hugging Face's."""
    xp = array_namespace(pixel_values)
    P = ParamView(params)
    check_pixel_values(pixel_values, cfg.num_channels, tuple(cfg.image_size))
    h = embed(P, cfg, pixel_values)
    b, s = h.shape[0], h.shape[1]
    mask = xp.ones((b, s), dtype=xp.int64)
    eps, nh = cfg.layer_norm_eps, cfg.num_attention_heads
    shared, per_layer = cfg.relative_bias
    shared_bias = relative_bias(xp, cfg, P[cfg.base_prefix + "encoder." + REL_TABLE]) if shared else None
    hidden = [h]
    mid = P[cfg.base_prefix + "encoder.mid_position_embeddings"] if cfg.mid_positions else None
    for i in range(cfg.num_hidden_layers):
        lp = f"{cfg.base_prefix}encoder.layer.{i}."
        bias = shared_bias
        if per_layer:
            own = relative_bias(xp, cfg, P[lp + "attention.attention." + REL_TABLE])
            bias = own if bias is None else bias + own
        h = layer(P, lp, h, mask, nh, eps, lambda y: activation(xp, cfg.hidden_act, y), bias)
        hidden.append(h)
        if mid is not None and i < cfg.num_hidden_layers - 1:  # yolos: after the hidden state is kept
            h = h + mid[i]
    last = h if cfg.mean_pooling else _layer_norm(xp, P, cfg.base_prefix + "layernorm", h, eps)
    return last, tuple(hidden)


def layer(P: Any, lp: str, h: Any, mask: Any, heads: int, eps: float, act: Any, bias: Any = None) -> Any:
    """One pre-norm encoder layer under the names ``lp + LAYER_NAMES[...]`` (shared with
    mobilevit.py's transformer): ``a = h + o(attn(LN_before(h)))``, ``a + ff2(act(ff1(LN_after(a))))``,
    each branch scaled by BEiT's ``lambda_1`` / ``lambda_2`` when present; ``mask [b, s]``."""
    xp = array_namespace(h)
    hd = h.shape[-1] // heads
    x = _layer_norm(xp, P, lp + LAYER_NAMES["ln1"], h, eps)
    q, k, v = (split_heads(_linear(xp, P, lp + LAYER_NAMES[r], x), heads, hd) for r in ("q", "k", "v"))
    ctx = merge_heads(attend(q, k, v, mask, 0, default_scale(hd), causal=False, bias=bias))
    a = h + _scaled(P, lp + "lambda_1", _linear(xp, P, lp + LAYER_NAMES["o"], ctx))
    x = _layer_norm(xp, P, lp + LAYER_NAMES["ln2"], a, eps)
    m = act(_linear(xp, P, lp + LAYER_NAMES["ff1"], x))
    return a + _scaled(P, lp + "lambda_2", _linear(xp, P, lp + LAYER_NAMES["ff2"], m))


def _scaled(P: Any, name: str, x: Any) -> Any:
    """``lambda * x`` with BEiT's layer scale ``lambda`` when the checkpoint has one."""
    return x * P[name] if name in P else x


def pooler(xp: Any, P: Any, cfg: ViTConfig, last: Any) -> Any:
    """``act(pooler.dense(last[:, 0]))`` (vit, deit); BEiT: ``LayerNorm(mean(last[:, 1:]))``
    with mean pooling, else ``last[:, 0]``."""
    p = cfg.base_prefix
    if cfg.pooler_style == "dense":
        return _act(xp, cfg.pooler_act, _linear(xp, P, p + "pooler.dense", last[:, 0]))
    if cfg.pooler_style == "mean":
        return _layer_norm(xp, P, p + "pooler.layernorm", xp.mean(last[:, 1:], axis=1), cfg.layer_norm_eps)
    return last[:, 0]


def _mlp(xp: Any, P: Any, name: str, x: Any) -> Any:
    """YOLOS' prediction MLP: ``L2(relu(L1(relu(L0(x)))))`` with ``L_i = {name}.layers.{i}``."""
    for i in range(3):
        x = _linear(xp, P, f"{name}.layers.{i}", x)
        if i < 2:
            x = xp.maximum(x, xp.zeros_like(x))
    return x


def _act(xp: Any, name: str, x: Any) -> Any:
    return xp.tanh(x) if name == "tanh" else activation(xp, name, x)


def forward(
    params: dict,
    cfg: ViTConfig,
    pixel_values: Any,
    head: str = "default",
    output_hidden_states: bool = False,
) -> dict:
    """The ``head``'s outputs (see the module docstring), plus ``hidden_states`` when asked."""
    check_head(head, cfg.heads)
    xp = array_namespace(pixel_values)
    P = ParamView(params)
    last, hidden = encode(P, cfg, pixel_values)
    if head == "default":
        out = {"last_hidden_state": last}
        if cfg.has_pooler:
            out["pooler_output"] = pooler(xp, P, cfg, last)
    elif head == "object-detection":
        tokens = last[:, last.shape[1] - cfg.detection_tokens :]
        out = {
            "logits": _mlp(xp, P, "class_labels_classifier", tokens),
            "pred_boxes": xp.sigmoid(_mlp(xp, P, "bbox_predictor", tokens)),
            "last_hidden_state": last,
        }
    elif cfg.pooler_style != "dense":  # beit: the classifier reads the pooler
        out = {"logits": _linear(xp, P, "classifier", pooler(xp, P, cfg, last))}
    else:
        logits = [_linear(xp, P, name, last[:, k]) for k, name in enumerate(classifier_names(cfg))]
        out = {"logits": logits[0] if len(logits) == 1 else (logits[0] + logits[1]) / 2}
    if output_hidden_states:
        out["hidden_states"] = hidden
    return out
