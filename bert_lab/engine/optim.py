"""Optimizers, parameter groups and the L1/L2 penalties.

BERT convention: biases and LayerNorm weights get no weight decay and no penalty. Weight decay is *decoupled*
(θ ← θ·(1 − lr·wd) before each step, as AdamW does) and works with every optimizer; the L2 and L1 penalties are
explicit terms added to the loss, so they pass through the optimizer's own gradient scaling.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from bert_lab.core.config import RunConfig
from bert_lab.core.metrics import NEAR_ZERO


def split_decay_params(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(decayed, not decayed): biases and normalisation-layer weights are never decayed or penalised."""
    norm_types = (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm1d)
    no_decay_ids = {
        id(p) for module in model.modules() if isinstance(module, norm_types) for p in module.parameters(recurse=False)
    }
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if name.endswith("bias") or id(param) in no_decay_ids:
            no_decay.append(param)
        else:
            decay.append(param)
    return decay, no_decay


def build_optimizer(model: nn.Module, config: RunConfig) -> torch.optim.Optimizer:
    """The optimizer `config` asks for, over two groups: decayed weights and the rest."""
    decay, no_decay = split_decay_params(model)
    groups = [
        {"params": decay, "decoupled_weight_decay": config.weight_decay},
        {"params": no_decay, "decoupled_weight_decay": 0.0},
    ]
    fused = _can_fuse(decay + no_decay)
    if config.optimizer == "adamw":
        for group in groups:  # torch's AdamW already decays decoupled: θ ← θ − lr·wd·θ
            group["weight_decay"] = group.pop("decoupled_weight_decay")
        return torch.optim.AdamW(groups, lr=config.lr, betas=(config.beta1, config.beta2), fused=fused)
    if config.optimizer == "adam":
        optimizer: torch.optim.Optimizer = torch.optim.Adam(
            groups, lr=config.lr, betas=(config.beta1, config.beta2), weight_decay=0.0, fused=fused
        )
    elif config.optimizer == "momentum":
        optimizer = torch.optim.SGD(
            groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov, weight_decay=0.0, fused=fused
        )
    else:
        optimizer = torch.optim.SGD(groups, lr=config.lr, momentum=0.0, weight_decay=0.0, fused=fused)
    if config.weight_decay > 0:
        optimizer.register_step_pre_hook(_decay_weights)
    return optimizer


@torch.no_grad()
def _decay_weights(optimizer: torch.optim.Optimizer, args: object, kwargs: object) -> None:
    """Decoupled weight decay for optimizers that do not have it built in: θ ← θ·(1 − lr·wd)."""
    for group in optimizer.param_groups:
        wd = group.get("decoupled_weight_decay", 0.0)
        if wd > 0 and group["params"]:
            torch._foreach_mul_(group["params"], 1.0 - group["lr"] * wd)


def _can_fuse(params: list[nn.Parameter]) -> bool:
    """Fused kernels exist for CPU and CUDA float tensors: one kernel per step instead of one per tensor."""
    return all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)


@torch.no_grad()
def weight_stats(params: list[torch.Tensor]) -> tuple[float, float]:
    """(L2 norm, share of entries with |w| < NEAR_ZERO) over `params`: what weight decay and L1/L2 change."""
    square_sum = sum(p.float().pow(2).sum() for p in params)
    near_zero = sum((p.abs() < NEAR_ZERO).sum() for p in params)
    count = sum(p.numel() for p in params)
    return math.sqrt(float(square_sum)), int(near_zero) / max(count, 1)


def penalty(params: list[nn.Parameter], *, l1: float, l2: float) -> torch.Tensor | None:
    """λ₂/2·‖θ‖² + λ₁·‖θ‖₁ over `params` (the decayed group), in fp32; None when both are off."""
    if l1 == 0 and l2 == 0:
        return None
    total = torch.zeros((), device=params[0].device, dtype=torch.float32)
    for p in params:
        w = p.float()
        if l2:
            total = total + 0.5 * l2 * w.pow(2).sum()
        if l1:
            total = total + l1 * w.abs().sum()
    return total
