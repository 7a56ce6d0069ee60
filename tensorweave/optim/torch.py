"""A real ``torch.optim.Optimizer`` that runs an update rule's lowered torch program.

``TorchOptimizer(params, rule)`` (and the ready-made :class:`AdamW`, :class:`Adafactor`) keeps
PyTorch's optimizer contract: param groups (every key of ``rule.defaults`` may differ per group),
``state_dict`` / ``load_state_dict``, ``zero_grad``, ``step(closure)``, step hooks, LR schedulers
(``LambdaLR`` over our schedule lambdas, see :func:`lambda_lr`) and DDP (which only averages
``p.grad`` before ``step``).

How a step runs (spec/optim.md, "Adapters"): for each param group, the parameters that have a
gradient are gathered; ``trace_update(rule_for_group, specs)`` is traced and lowered with the torch
backend once per (hyperparameters, names, shapes, dtypes) and cached; one call of that program
updates every parameter of the group, then ``p.copy_(new_p)`` writes the parameters in place and
the new state tensors replace the old ones. The learning rate is a program input
(``hyper/lr = group["lr"]``), so schedulers never cause a retrace. ``compile=True`` runs the
program and the in-place writes through ``torch.compile`` as one function (inductor fuses each
parameter's update into one loop and writes parameters and state in place). ``compile="auto"``
(the default) compiles the calls that update at least ``AUTO_COMPILE_ELEMENTS`` elements when a
C++ compiler is installed, and runs the others eagerly; a step whose compilation fails warns once
and runs eagerly.

State per parameter (``optimizer.state[p]``): the rule's per-parameter slots by name
(``exp_avg``, ``exp_avg_sq``, ... ; nested rules give ``inner/exp_avg``) and the rule's scalar
counters (``step``: int64, the number of updates applied to this parameter).
"""

from __future__ import annotations

import copy
import shutil
import warnings
from collections import defaultdict
from typing import Any, Callable, Iterable

import numpy as np

try:
    import torch
except ModuleNotFoundError:  # one line naming the pip extra
    raise ImportError("tensorweave.optim.torch needs PyTorch: pip install 'tensorweave[torch]'") from None

from ..frontends.optim import adafactor as _adafactor
from ..frontends.optim import adamw as _adamw
from ..frontends.optim.base import UpdateRule, check_hyper_value, trace_update
from ..frontends.optim.nonfinite import check_nonfinite_limit
from ..ir.types import DType, TensorSpec

#: ``compile="auto"`` compiles a call updating at least this many elements (the eager program keeps
#: ~15 full-size temporaries per parameter: fine for small models, far slower for big ones).
AUTO_COMPILE_ELEMENTS = 1 << 22

_TORCH_DTYPES = {
    torch.float16: DType.float16,
    torch.bfloat16: DType.bfloat16,
    torch.float32: DType.float32,
    torch.float64: DType.float64,
}


def _to_torch(arr: np.ndarray) -> torch.Tensor:
    """A numpy array (ml_dtypes bfloat16 included) as a torch tensor, sharing memory where possible."""
    arr = np.asarray(arr)
    if not arr.flags.c_contiguous or not arr.flags.writeable:
        arr = arr.copy()
    if arr.dtype.name == "bfloat16":
        return torch.from_numpy(arr.view(np.uint16)).view(torch.bfloat16)
    return torch.from_numpy(arr)


def _state_leaves(tree: Any, names: set, path: tuple = ()) -> list[tuple[str, str | None]]:
    """``[(key, param_name or None)]`` for the leaves of a rule's state in flattening order.

    A leaf under a dict key that is a parameter name is that parameter's slot ``key`` (the path
    without the name, ``/``-joined); any other leaf (``step``) is a counter shared by the call."""
    if isinstance(tree, dict):
        out: list = []
        for k, v in tree.items():
            if not isinstance(v, (dict, list, tuple)) and k in names and path:
                out.append(("/".join(path), k))
            else:
                out += _state_leaves(v, names, path + (str(k),))
        return out
    if isinstance(tree, (list, tuple)):
        out = []
        for i, v in enumerate(tree):
            out += _state_leaves(v, names, path + (str(i),))
        return out
    return [("/".join(path), None)]


class _Step:
    """One traced + lowered update for a fixed list of (name, shape, dtype) and hyperparameters."""

    def __init__(self, rule: UpdateRule, names: list[str], tensors: list[torch.Tensor], compile: bool):
        from ..backends import lower

        specs = {n: TensorSpec(tuple(t.shape), _TORCH_DTYPES[t.dtype], n) for n, t in zip(names, tensors)}
        self.rule = rule
        self.names = names
        self.traced = trace_update(rule, specs, name="torch_optimizer_step")
        self.program = lower(self.traced.graph, "torch")
        self.hyper_keys = [n[len("hyper/") :] for n in self.traced.input_names if n.startswith("hyper/")]
        template = rule.init(
            {n: np.zeros(tuple(t.shape), specs[n].dtype.to_numpy()) for n, t in zip(names, tensors)}
        )
        self.leaves = _state_leaves(template, set(names))
        self.counters = sorted({k for k, n in self.leaves if n is None})
        self.compiled = self._compile() if compile else None
        self.compile_failed = False

    def _compile(self) -> Callable:
        """``torch.compile`` of: run the program, copy new params and new non-counter state in place,
        return the new counters. A fresh code object per step keeps dynamo's caches apart."""
        n = len(self.names)
        state_start = 2 * n
        inplace = [i for i, (_, name) in enumerate(self.leaves) if name is not None]
        counters = [i for i, (_, name) in enumerate(self.leaves) if name is None]
        lines = ["def run(*args):", "    outs = entry(*args)"]
        lines += [f"    args[{i}].copy_(outs[{i}])" for i in range(n)]
        lines += [f"    args[{state_start + i}].copy_(outs[{n + i}])" for i in inplace]
        lines.append("    return (" + "".join(f"outs[{n + i}], " for i in counters) + ")")
        ns = {"entry": self.program.entry}
        exec(compile("\n".join(lines), f"<tensorweave optimizer step {id(self)}>", "exec"), ns)  # noqa: S102
        return torch.compile(ns["run"], fullgraph=True, dynamic=False)

    def init_state(self, new: list[tuple[str, torch.Tensor]]) -> list[dict]:
        """Fresh per-parameter state dicts for ``new`` parameters (the rule's ``init``)."""
        names = [n for n, _ in new]
        tree = self.rule.init(
            {n: np.zeros(tuple(p.shape), _TORCH_DTYPES[p.dtype].to_numpy()) for n, p in new}
        )
        leaves = _state_leaves(tree, set(names))
        from ..ir.control import tree_flatten

        values = tree_flatten(tree)[0]
        out = [{} for _ in new]
        for (key, name), v in zip(leaves, values):
            for i, (n, p) in enumerate(new):
                if name is None or name == n:
                    out[i][key] = _to_torch(np.asarray(v)).to(p.device)
        return out

    def __call__(self, params: list[torch.Tensor], states: list[dict], hyper: dict) -> None:
        index = {n: i for i, n in enumerate(self.names)}
        flat = list(params) + [p.grad for p in params]
        for key, name in self.leaves:
            st = states[0] if name is None else states[index[name]]
            flat.append(st[key])
        flat += [torch.tensor(float(hyper[k]), dtype=torch.float64) for k in self.hyper_keys]
        n = len(params)
        if self.compiled is not None:
            try:
                counters = self.compiled(*flat)
            except Exception as exc:  # compilation happens before anything is written
                if self.compile_failed is not False:
                    raise
                warnings.warn(
                    f"torch.compile of the optimizer step failed ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else ''}); running the eager program",
                    RuntimeWarning,
                    stacklevel=3,
                )
                self.compiled, self.compile_failed = None, True
                return self(params, states, hyper)
            self.compile_failed = None  # compiled and ran once: later errors are real errors
            it = iter(counters)
            for key, name in self.leaves:
                if name is None:
                    value = next(it)
                    for st in states:
                        st[key] = value
            return
        outs = self.program(*flat)
        outs = outs if isinstance(outs, tuple) else (outs,)
        for p, new in zip(params, outs[:n]):
            p.copy_(new)
        for (key, name), value in zip(self.leaves, outs[n:]):
            if name is None:
                for st in states:
                    st[key] = value
            else:
                states[index[name]][key] = value


def rule_defaults(rule: UpdateRule) -> dict | None:
    """``rule.defaults``, or the wrapped rule's for wrappers such as ``AccumulateSteps`` (``.rule``)."""
    defaults = getattr(rule, "defaults", None)
    if isinstance(defaults, dict):
        return defaults
    inner = getattr(rule, "rule", None)
    return rule_defaults(inner) if isinstance(inner, UpdateRule) else None


def with_hyperparameters(rule: UpdateRule, values: dict) -> UpdateRule:
    """``rule`` with the entries of ``values`` that name keys of ``rule.defaults`` replaced (validated by
    building ``type(rule)(**defaults)`` first, so a bad group value is the rule's own error). For a
    wrapper (``AccumulateSteps``) the wrapped rule is replaced."""
    if not isinstance(getattr(rule, "defaults", None), dict):
        inner = with_hyperparameters(rule.rule, values)
        if inner is rule.rule:
            return rule
        new = copy.copy(rule)
        new.rule = inner
        return new
    defaults = rule.defaults
    changed = {k: values[k] for k in defaults if k in values and values[k] != defaults[k]}
    if not changed:
        return rule
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        validated = type(rule)(**{**defaults, **changed})
    new = copy.copy(rule)
    for k in changed:
        setattr(new, k, getattr(validated, k))
    return new


class TorchOptimizer(torch.optim.Optimizer):
    """``TorchOptimizer(params, rule, compile="auto")``: a ``torch.optim.Optimizer`` running ``rule``.

    ``params``: tensors, ``(name, tensor)`` pairs (``module.named_parameters()``; names feed
    name-based rules such as ``exclude_from_weight_decay``) or param-group dicts overriding any key
    of ``rule.defaults``. The rule's ``lr`` must be a number (or ``None`` for Adafactor's relative
    step); drive it with a scheduler, e.g. :func:`lambda_lr`.
    """

    def __init__(self, params: Iterable[Any], rule: UpdateRule, compile: bool | str = "auto"):
        if not isinstance(rule, UpdateRule):
            raise ValueError(
                f"TorchOptimizer needs an update rule (tensorweave.optim.AdamW, ...), got "
                f"{type(rule).__name__}"
            )
        defaults = rule_defaults(rule)
        if not isinstance(defaults, dict) or "lr" not in defaults:
            raise ValueError(
                f"{type(rule).__name__} has no `defaults` dict with 'lr'; wrap AdamW or Adafactor"
            )
        if callable(defaults["lr"]):
            raise ValueError(
                "the torch adapter takes a numeric lr; pass lr=<number> and drive it with "
                "tensorweave.optim.torch.lambda_lr(schedule, optimizer) (a LambdaLR)"
            )
        self.rule = rule
        if compile not in (True, False, "auto"):
            raise ValueError(f"compile must be True, False or 'auto', got {compile!r}")
        self.compile = compile
        self._steps: dict = {}
        super().__init__(params, dict(defaults))

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        for p in group["params"]:
            if p.dtype not in _TORCH_DTYPES:
                raise ValueError(
                    f"parameter of dtype {p.dtype}: optimizers update float16/bfloat16/float32/float64 "
                    "parameters only"
                )
            if p.device.type != "cpu":
                raise ValueError(
                    f"a parameter is on {p.device}; the torch backend runs the lowered update on CPU "
                    "tensors, move the model with .cpu()"
                )
        self._group_rule(group)  # bad group hyperparameters fail here, before any step

    def _uses_lr(self, group: dict) -> bool:
        """Adafactor's relative step ignores the group lr (as the reference does), even once a scheduler
        (``AdafactorSchedule``) has written a number there."""
        return group.get("lr") is not None and not group.get("relative_step", False)

    def _group_rule(self, group: dict) -> UpdateRule:
        values = {k: v for k, v in group.items() if k != "params"}
        if group.get("relative_step", False):
            values.pop("lr", None)
        return with_hyperparameters(self.rule, values)

    def _group_key(self, group: dict) -> tuple:
        return tuple((k, repr(group[k])) for k in rule_defaults(self.rule) if k != "lr") + (
            ("lr_none", not self._uses_lr(group)),
        )

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter that has a gradient; returns ``closure()``'s loss if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            names = group.get("param_names") or [str(i) for i in range(len(group["params"]))]
            active = [(n, p) for n, p in zip(names, group["params"]) if p.grad is not None]
            if not active:
                continue
            for n, p in active:
                if p.grad.is_sparse:
                    raise RuntimeError(
                        f"parameter {n!r} has a sparse gradient; this optimizer takes dense gradients"
                    )
            rule = None
            hyper = {"lr": group["lr"]} if self._uses_lr(group) else {}
            if hyper:
                check_hyper_value("lr", hyper["lr"])  # NaN / negative group lr: before any work
            new = [(n, p) for n, p in active if len(self.state[p]) == 0]
            if new:
                rule = self._group_rule(group)
                fresh = self._get_step(rule, group, new).init_state(new)
                for (_, p), st in zip(new, fresh):
                    self.state[p].update(st)
            # parameters skipped earlier (no grad) may have fewer updates: one call per counter value
            buckets: dict = defaultdict(list)
            for n, p in active:
                st = self.state[p]
                buckets[
                    tuple(int(v) for k, v in sorted(st.items()) if v.dim() == 0 and not v.is_floating_point())
                ].append((n, p))
            for members in buckets.values():
                rule = rule or self._group_rule(group)
                step = self._get_step(rule, group, members)
                if "lr" not in step.hyper_keys:
                    hyper = {}
                step([p for _, p in members], [self.state[p] for _, p in members], hyper)
                counter = self.state[members[0][1]].get("notfinite_count")
                if counter is not None:
                    check_nonfinite_limit(self.rule, counter)
        return loss

    def _get_step(self, rule: UpdateRule, group: dict, members: list) -> _Step:
        compile = self.compile
        if compile == "auto":
            compile = sum(p.numel() for _, p in members) >= AUTO_COMPILE_ELEMENTS and any(
                shutil.which(c) for c in ("g++", "c++", "clang++", "cl")
            )
        key = (self._group_key(group), tuple((n, tuple(p.shape), p.dtype) for n, p in members), compile)
        step = self._steps.get(key)
        if step is None:
            step = self._steps[key] = _Step(rule, [n for n, _ in members], [p for _, p in members], compile)
        return step

    def load_state_dict(self, state_dict: dict) -> None:
        """PyTorch's loading, except that state keeps its saved dtype (PyTorch casts floating state to the
        parameter's dtype, which would round Adafactor's float32 state of 16-bit parameters) and every
        state tensor is copied (the loaded optimizer never shares memory with ``state_dict``)."""
        self._check_foreign_state(state_dict)
        saved = state_dict["state"]
        ids = [i for g in state_dict["param_groups"] for i in g["params"]]
        params = [p for g in self.param_groups for p in g["params"]]
        super().load_state_dict(state_dict)
        for i, p in zip(ids, params):
            if i in saved:
                for k, v in saved[i].items():
                    if isinstance(v, torch.Tensor):
                        self.state[p][k] = v.detach().to(device=p.device).clone()

    def _check_foreign_state(self, state_dict: Any) -> None:
        """One ``ValueError`` naming what is missing when ``state_dict`` is not this optimizer's (e.g. an
        SGD state loaded into AdamW), instead of a ``KeyError`` at the next step."""
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError(
                "load_state_dict needs a dict with 'state' and 'param_groups' (optimizer.state_dict())"
            )
        what = f"{type(self).__name__} ({type(self.rule).__name__})"
        need = [k for k in rule_defaults(self.rule) if k != "params"]
        problems = []
        for i, g in enumerate(state_dict["param_groups"]):
            missing = [k for k in need if k not in g]
            if missing:
                problems.append(f"param group {i} lacks {missing}")
        template = self._state_keys()
        for pid, st in state_dict["state"].items():
            if not isinstance(st, dict):
                problems.append(f"the state of parameter {pid} is not a dict")
                continue
            if st and template is not None:
                missing = sorted(template[0] - set(st))
                per_dim = template[1]
                missing = [k for k in missing if k not in per_dim]  # factored/unfactored slots differ by rank
                if missing:
                    problems.append(f"the state of parameter {pid} lacks {missing} (has {sorted(st)})")
        if problems:
            raise ValueError(
                f"this state_dict is not a state of {what}: "
                + "; ".join(problems[:4])
                + ("; ..." if len(problems) > 4 else "")
                + f". Load a state saved from {type(self).__name__}"
            )

    def _state_keys(self) -> tuple[set, set] | None:
        """(keys every parameter's state has, keys that depend on the parameter's rank)."""
        keys = []
        for shape in ((2,), (2, 2)):
            tree = self.rule.init({"p": np.zeros(shape, np.float32)})
            keys.append({k for k, _ in _state_leaves(tree, {"p"})})
        return keys[0] & keys[1], keys[0] ^ keys[1]


class AdamW(TorchOptimizer):
    """``AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, correct_bias=True,
    no_deprecation_warning=False, *, weight_decay_order="after", include_in_weight_decay=None,
    exclude_from_weight_decay=None, compile="auto")``: Transformers' AdamW math
    (tensorweave.optim.AdamW) as a torch optimizer."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        correct_bias: bool = True,
        no_deprecation_warning: bool = False,
        *,
        weight_decay_order: str = "after",
        include_in_weight_decay: Any = None,
        exclude_from_weight_decay: Any = None,
        compile: bool | str = "auto",
    ):
        if not no_deprecation_warning:
            warnings.warn(_adamw.DEPRECATION, FutureWarning, stacklevel=2)
        rule = _adamw.AdamW(
            lr,
            betas,
            eps,
            weight_decay,
            correct_bias,
            True,
            weight_decay_order=weight_decay_order,
            include_in_weight_decay=include_in_weight_decay,
            exclude_from_weight_decay=exclude_from_weight_decay,
        )
        super().__init__(params, rule, compile=compile)


class Adafactor(TorchOptimizer):
    """``Adafactor(params, lr=None, eps=(1e-30, 1e-3), clip_threshold=1.0, decay_rate=-0.8, beta1=None,
    weight_decay=0.0, scale_parameter=True, relative_step=True, warmup_init=False, compile="auto")``."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | None = None,
        eps: tuple[float, float] = (1e-30, 1e-3),
        clip_threshold: float = 1.0,
        decay_rate: float = -0.8,
        beta1: float | None = None,
        weight_decay: float = 0.0,
        scale_parameter: bool = True,
        relative_step: bool = True,
        warmup_init: bool = False,
        *,
        compile: bool | str = "auto",
    ):
        rule = _adafactor.Adafactor(
            lr,
            eps,
            clip_threshold,
            decay_rate,
            beta1,
            weight_decay,
            scale_parameter,
            relative_step,
            warmup_init,
        )
        super().__init__(params, rule, compile=compile)


def lambda_lr(
    schedule: Any, optimizer: torch.optim.Optimizer | None = None, last_epoch: int | None = None
) -> torch.optim.lr_scheduler.LambdaLR:
    """``LambdaLR(optimizer, schedule.lr_lambda)`` for a tensorweave ``Schedule`` (``get_*_schedule``):
    the group lr becomes ``initial_lr * lr_lambda(step)``. ``optimizer`` defaults to the schedule's."""
    if isinstance(schedule, torch.optim.lr_scheduler.LRScheduler):  # get_*_schedule(torch optimizer)
        if optimizer is not None and optimizer is not schedule.optimizer:
            raise ValueError("this scheduler drives another optimizer")
        return schedule
    optimizer = optimizer if optimizer is not None else getattr(schedule, "optimizer", None)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError("lambda_lr needs a torch optimizer: pass optimizer= or build the schedule with one")
    fn = getattr(schedule, "lr_lambda", None)
    if not callable(fn):
        raise ValueError(
            f"lambda_lr needs a tensorweave Schedule (with .lr_lambda), got {type(schedule).__name__}"
        )
    last = getattr(schedule, "last_epoch", -1) if last_epoch is None else last_epoch
    return torch.optim.lr_scheduler.LambdaLR(optimizer, fn, last_epoch=last)


class AdafactorSchedule(torch.optim.lr_scheduler.LambdaLR):
    """Transformers' ``AdafactorSchedule(optimizer, initial_lr=0.0)`` for :class:`Adafactor` (what
    ``tensorweave.optim.AdafactorSchedule`` returns for a torch optimizer): a ``LambdaLR`` whose
    ``get_lr()`` is the effective lr of each group's last step (for its first parameter), or
    ``initial_lr`` before any step. Like the reference, constructing it does not change the groups'
    lr; the adapter's relative step ignores the group lr it later writes (logging only)."""

    def __init__(self, optimizer: torch.optim.Optimizer, initial_lr: float = 0.0):
        rule = getattr(optimizer, "rule", None)
        if not isinstance(optimizer, TorchOptimizer) or not isinstance(rule, _adafactor.Adafactor):
            raise ValueError(
                f"AdafactorSchedule needs tensorweave.optim.torch.Adafactor, got {type(optimizer).__name__}"
            )
        self._proxy = _adafactor.AdafactorSchedule(rule, initial_lr)
        initial_lr = self._proxy.initial_lr
        saved = [g["lr"] for g in optimizer.param_groups]
        for group in optimizer.param_groups:
            group["initial_lr"] = initial_lr
        super().__init__(optimizer, lambda _: initial_lr)
        for group, lr in zip(optimizer.param_groups, saved):
            del group["initial_lr"]
            if lr is None:
                group["lr"] = None  # keep "no manual lr" as the reference's group does

    def get_lr(self) -> list:
        opt = self.optimizer
        lrs = []
        for group in opt.param_groups:
            p = group["params"][0]
            st = opt.state.get(p, {})
            if p.grad is None or "RMS" not in st:
                continue
            rule = opt._group_rule(group)
            tree = {"step": np.asarray(st["step"].cpu()), "RMS": {"p": st["RMS"].detach().cpu().numpy()}}
            proxy = _adafactor.AdafactorSchedule(rule, self._proxy.initial_lr)
            hyper = {"lr": group["lr"]} if opt._uses_lr(group) else None
            lrs.append(float(proxy.get_lr(tree, hyper)))
        if not lrs:
            lrs = list(self.base_lrs)
        return lrs


__all__ = ["TorchOptimizer", "AdamW", "Adafactor", "AdafactorSchedule", "lambda_lr", "with_hyperparameters"]
