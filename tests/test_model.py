from __future__ import annotations

import pytest
import torch
from torch import nn

from bert_lab.core.config import RunConfig
from bert_lab.engine.model import (
    CPU_ATTENTION,
    CpuDropout,
    FirstTokenLayer,
    ModelError,
    TrainedRows,
    as_built,
    cpu_attention,
    first_token_only,
    load_model,
    load_tokenizer,
    resolve_model,
    tiny_bert_config,
    train_used_rows_only,
    untrained_rows,
    use_cpu_kernels,
)
from bert_lab.engine.optim import build_optimizer, split_decay_params, weight_stats


def dropouts(model: nn.Module) -> dict[str, float]:
    return {name: m.p for name, m in model.named_modules() if isinstance(m, nn.Dropout)}


def test_dropout_overrides_are_visible_on_the_modules() -> None:
    model = load_model(RunConfig(model="tiny", dropout=0.3, attention_dropout=0.05, classifier_dropout=0.4), ["a", "b"])
    ps = dropouts(model)
    assert ps["bert.encoder.layer.0.attention.self.dropout"] == 0.05
    assert ps["bert.encoder.layer.1.attention.output.dropout"] == 0.3
    assert ps["bert.encoder.layer.1.output.dropout"] == 0.3
    assert ps["bert.embeddings.dropout"] == 0.3
    assert ps["dropout"] == 0.4
    assert model.config.hidden_dropout_prob == 0.3 and model.config.attention_probs_dropout_prob == 0.05


def test_classifier_dropout_follows_hidden_dropout_by_default() -> None:
    ps = dropouts(load_model(RunConfig(model="tiny", dropout=0.0), ["a", "b"]))
    assert ps["dropout"] == 0.0 and ps["bert.encoder.layer.0.output.dropout"] == 0.0
    assert ps["bert.encoder.layer.0.attention.self.dropout"] == 0.1  # untouched: the model's own


def test_bundled_minilm_loads_with_a_new_head() -> None:
    model = load_model(RunConfig(model="minilm", dropout=0.2), ["neg", "neu", "pos"])
    assert model.config.num_labels == 3 and model.config.id2label[2] == "pos"
    assert model.config.num_hidden_layers == 6 and model.config.hidden_size == 384
    assert dropouts(model)["bert.encoder.layer.5.output.dropout"] == 0.2


def test_unknown_model_names_say_what_works(tmp_path) -> None:
    with pytest.raises(ModelError, match="'minilm', 'tiny' or a folder path"):
        load_tokenizer("no-such-org/no-such-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        resolve_model(str(tmp_path / "empty"))


def test_local_model_folder_works(tmp_path) -> None:
    model = load_model(RunConfig(model="tiny"), ["a", "b"])
    model.save_pretrained(tmp_path / "m")
    load_tokenizer("tiny").save_pretrained(tmp_path / "m")
    again = load_model(RunConfig(model=str(tmp_path / "m")), ["x", "y"])
    assert again.config.hidden_size == 64 and again.config.id2label[1] == "y"


def test_cpu_kernels_compute_the_same_model_with_eager_attention(tmp_path) -> None:
    model = load_model(RunConfig(model="tiny"), ["a", "b"]).eval()
    assert model.config._attn_implementation == "sdpa"  # transformers' default, slower on the CPU
    x = {"input_ids": torch.randint(5, 900, (3, 11)), "attention_mask": torch.ones(3, 11, dtype=torch.long)}
    x["attention_mask"][0, 7:] = 0  # padding is masked the same way
    with torch.no_grad():
        before = model(**x).logits
        use_cpu_kernels(model)
        after = model(**x).logits
    assert model.config._attn_implementation == CPU_ATTENTION
    assert torch.allclose(before, after, atol=1e-5)
    model.save_pretrained(tmp_path / "m")
    assert CPU_ATTENTION not in (tmp_path / "m" / "config.json").read_text()  # the take-home model loads as usual


def test_cpu_dropout_drops_at_rate_p_and_rescales() -> None:
    model = load_model(RunConfig(model="tiny", dropout=0.25), ["a", "b"])
    use_cpu_kernels(model)
    layer = model.bert.encoder.layer[0].output.dropout
    assert type(layer) is CpuDropout and layer.p == 0.25  # same module, same p
    x = torch.ones(400, 500)
    torch.manual_seed(0)
    y = layer(x)
    assert y.unique().tolist() == pytest.approx([0.0, 1 / 0.75])
    assert (y == 0).float().mean().item() == pytest.approx(0.25, abs=0.005)
    torch.manual_seed(0)
    assert torch.equal(layer(x), y)  # seeded like any torch randomness
    layer.eval()
    assert torch.equal(layer(x), x)


def test_cpu_dropout_gradient_flows_through_kept_units_only() -> None:
    layer = CpuDropout(0.5)
    x = torch.ones(1000, requires_grad=True)
    y = layer(x)
    y.sum().backward()
    assert torch.equal(x.grad, (y != 0).float() * 2.0)


def test_cpu_attention_drops_attention_probabilities_only_in_training() -> None:
    model = load_model(RunConfig(model="tiny"), ["a", "b"])
    layer = model.bert.encoder.layer[0].attention.self
    q, k, v = (torch.randn(2, 2, 9, 32) for _ in range(3))
    out, weights = cpu_attention(layer.eval(), q, k, v, None, dropout=0.5)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 2, 9))  # softmax rows, nothing dropped
    torch.manual_seed(0)
    dropped_out, dropped = cpu_attention(layer.train(), q, k, v, None, dropout=0.5)
    kept = dropped != 0
    assert 0.4 < kept.float().mean().item() < 0.6
    assert torch.allclose(dropped[kept], 2 * weights[kept])  # the kept ones rescaled by 1 / (1 - p)
    assert torch.allclose(dropped_out, torch.matmul(dropped, v).transpose(1, 2))


def test_training_only_the_rows_the_data_uses_changes_no_number() -> None:
    """Three AdamW steps with the whole matrix and with `TrainedRows` over the batches' tokens: the same loss, the
    same gradient norm and the same weights, row for row; and the plain matrix comes back for saving."""
    config = RunConfig(model="tiny", dropout=0.0, attention_dropout=0.0)
    torch.manual_seed(0)
    batches = [torch.randint(1, 900, (4, 9)) for _ in range(3)]
    whole, rows = (load_model(config, ["a", "b"]) for _ in range(2))
    rows.load_state_dict(whole.state_dict())
    assert train_used_rows_only(rows, config, [ids.tolist() for batch in batches for ids in batch])
    assert isinstance(rows.get_input_embeddings(), TrainedRows)
    assert len(rows.get_input_embeddings().rows) == len({int(t) for b in batches for t in b.flatten()})
    before = whole.get_input_embeddings().weight.detach().clone()
    norms = []
    for model in (whole, rows):
        optimizer = build_optimizer(model, config)
        for ids in batches:
            loss = model(input_ids=ids, labels=torch.zeros(4, dtype=torch.long)).loss
            loss.backward()
            norms += [loss.item(), torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0).item()]
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    assert norms[:6] == pytest.approx(norms[6:], rel=1e-5)
    stats = weight_stats(split_decay_params(whole)[0])
    assert weight_stats(split_decay_params(rows)[0] + untrained_rows(rows)) == pytest.approx(stats, rel=1e-5)
    as_built(rows)
    trained = rows.get_input_embeddings()
    assert type(trained) is nn.Embedding and trained.padding_idx == whole.get_input_embeddings().padding_idx
    assert torch.allclose(trained.weight, whole.get_input_embeddings().weight, atol=1e-6)
    unused = torch.ones(len(before), dtype=torch.bool)
    unused[torch.cat([b.flatten() for b in batches])] = False
    assert torch.equal(trained.weight[unused], before[unused])  # never trained, never moved
    assert not torch.equal(trained.weight[~unused], before[~unused])


def test_rows_are_all_trained_where_decay_or_a_penalty_reaches_every_row() -> None:
    for knob in ("weight_decay", "l1", "l2"):
        model = load_model(RunConfig(model="tiny"), ["a", "b"])
        assert not train_used_rows_only(model, RunConfig(model="tiny", **{knob: 0.01}), [[5, 6]])
        assert type(model.get_input_embeddings()) is nn.Embedding


@pytest.mark.parametrize("attention", ["sdpa", CPU_ATTENTION])
def test_the_last_layer_computing_the_first_token_only_changes_no_number(attention: str) -> None:
    """The classifier reads token 0 of the last layer: computing that row only gives the same logits, loss and
    gradients (padding masked the same way), and `as_built` puts the whole layer back."""
    config = RunConfig(model="tiny", dropout=0.0, attention_dropout=0.0)
    whole, first = (load_model(config, ["a", "b"]) for _ in range(2))
    first.load_state_dict(whole.state_dict())
    for model in (whole, first):
        model.set_attn_implementation(attention)
    assert first_token_only(first)
    assert (
        type(first.bert.encoder.layer[-1]) is FirstTokenLayer
        and type(first.bert.encoder.layer[0]) is not FirstTokenLayer
    )
    torch.manual_seed(0)
    x = {"input_ids": torch.randint(5, 900, (3, 11)), "attention_mask": torch.ones(3, 11, dtype=torch.long)}
    x["attention_mask"][0, 6:] = 0
    x["labels"] = torch.tensor([0, 1, 1])
    grads = []
    for model in (whole, first):
        loss = model(**x).loss
        loss.backward()
        grads.append({name: p.grad for name, p in model.named_parameters()})
        with torch.no_grad():
            grads[-1]["logits"] = model.eval()(**x).logits
    assert grads[0].keys() == grads[1].keys()
    for name, grad in grads[0].items():
        assert torch.allclose(grad, grads[1][name], atol=1e-6), name
    x["attention_mask"][1, 3] = 0  # a masked key the first token must not see
    with torch.no_grad():
        assert torch.allclose(whole(**x).logits, first(**x).logits, atol=1e-6)
    as_built(first)
    assert type(first.bert.encoder.layer[-1]) is type(whole.bert.encoder.layer[-1])


def test_only_a_head_that_reads_the_first_token_gets_the_first_token_layer() -> None:
    from transformers import BertForTokenClassification

    tokens = BertForTokenClassification(tiny_bert_config(1000, num_labels=2))  # reads every token
    assert not first_token_only(tokens)
    assert not any(isinstance(m, FirstTokenLayer) for m in tokens.modules())
