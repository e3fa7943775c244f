from __future__ import annotations

import pytest
import torch
from torch import nn

from bert_lab.core.config import RunConfig
from bert_lab.engine.model import load_model
from bert_lab.engine.optim import build_optimizer, penalty, split_decay_params


def tiny_bert() -> nn.Module:
    return load_model(RunConfig(model="tiny"), ["a", "b"])


def test_bias_and_layernorm_are_not_decayed() -> None:
    model = tiny_bert()
    decay, no_decay = split_decay_params(model)
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(names[id(p)].endswith("bias") or "LayerNorm" in names[id(p)] for p in no_decay)
    assert not any(names[id(p)].endswith("bias") or "LayerNorm" in names[id(p)] for p in decay)
    assert len(decay) + len(no_decay) == len(list(model.parameters()))
    assert any("classifier.weight" == names[id(p)] for p in decay)


@pytest.mark.parametrize(
    ("name", "kind"),
    [("sgd", torch.optim.SGD), ("momentum", torch.optim.SGD), ("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)],
)
def test_optimizer_choice_and_groups(name: str, kind: type) -> None:
    opt = build_optimizer(tiny_bert(), RunConfig(optimizer=name, weight_decay=0.01, lr=1e-3))
    assert type(opt) is kind
    assert len(opt.param_groups) == 2
    if name == "momentum":
        assert opt.param_groups[0]["momentum"] == 0.9
    if name == "sgd":
        assert opt.param_groups[0]["momentum"] == 0.0


def test_nesterov_reaches_the_optimizer() -> None:
    opt = build_optimizer(tiny_bert(), RunConfig(optimizer="momentum", nesterov=True, momentum=0.8))
    assert opt.param_groups[0]["nesterov"] and opt.param_groups[0]["momentum"] == 0.8


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam", "adamw"])
def test_weight_decay_is_decoupled_for_every_optimizer(name: str) -> None:
    """With zero gradients, one step must shrink decayed weights by exactly (1 − lr·wd) and leave biases alone."""
    lr, wd = 0.1, 0.5
    model = nn.Sequential(nn.Linear(4, 3), nn.LayerNorm(3))
    opt = build_optimizer(model, RunConfig(optimizer=name, lr=lr, weight_decay=wd))
    before = [p.detach().clone() for p in model.parameters()]
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    weight, bias, ln_weight, ln_bias = (p.detach() for p in model.parameters())
    assert torch.allclose(weight, before[0] * (1 - lr * wd), atol=1e-6)
    assert torch.equal(bias, before[1]) and torch.equal(ln_weight, before[2]) and torch.equal(ln_bias, before[3])


def test_l2_penalty_value_and_gradient() -> None:
    w = nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))
    out = penalty([w], l1=0.0, l2=0.1)
    assert out.item() == pytest.approx(0.05 * 14)
    out.backward()
    assert torch.allclose(w.grad, 0.1 * w.detach())  # d/dθ λ/2‖θ‖² = λθ


def test_l1_penalty_value_and_gradient() -> None:
    w = nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))
    out = penalty([w], l1=0.2, l2=0.0)
    assert out.item() == pytest.approx(0.2 * 6)
    out.backward()
    assert torch.allclose(w.grad, 0.2 * torch.sign(w.detach()))  # d/dθ λ‖θ‖₁ = λ·sign(θ)


def test_no_penalty_when_both_are_off() -> None:
    assert penalty([nn.Parameter(torch.ones(2))], l1=0, l2=0) is None
