"""CharRNN: shapes, the vocabulary inside the checkpoint, strict and safe loading."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from rnn_demo.model import CELLS, CharRNN, CheckpointError
from rnn_demo.model.rnn import RNN

VOCAB = "\n !,.abcdefghijklmnopqrstuvwxyz记忆"


def small(cell="lstm", **kwargs):
    torch.manual_seed(0)
    return CharRNN(VOCAB, cell=cell, hidden_size=kwargs.pop("hidden_size", 16), num_layers=2, **kwargs)


@pytest.mark.parametrize("cell", CELLS)
def test_forward_shapes_and_carried_state(cell):
    model = small(cell).eval()
    idx = torch.randint(0, len(VOCAB), (3, 11))
    logits, hidden = model(idx)
    assert logits.shape == (3, 11, len(VOCAB))
    first, middle = model(idx[:, :5])
    second, _ = model(idx[:, 5:], middle)
    assert torch.allclose(torch.cat([first, second], dim=1), logits, atol=1e-6)
    if cell == "lstm":
        assert isinstance(hidden, tuple) and hidden[0].shape == hidden[1].shape == (2, 3, 16)
    else:
        assert hidden.shape == (2, 3, 16)


def test_rnn_cell_is_the_hand_written_layer():
    assert isinstance(small("rnn").rnn, RNN)
    assert isinstance(small("lstm").rnn, torch.nn.LSTM)
    assert isinstance(small("gru").rnn, torch.nn.GRU)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("tie_weights", [False, True])
def test_save_pretrained_round_trip(tmp_path, cell, tie_weights):
    model = small(cell, tie_weights=tie_weights, dropout=0.1).eval()
    model.save_pretrained(tmp_path)
    assert {"model.safetensors", "config.json", "README.md"} <= {p.name for p in tmp_path.iterdir()}
    assert not list(tmp_path.glob("*.bin")) and not list(tmp_path.glob("*.pt"))
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["vocab"] == VOCAB and config["cell"] == cell and config["tie_weights"] == tie_weights
    loaded = CharRNN.from_pretrained(tmp_path)
    assert not loaded.training
    assert loaded.vocab == VOCAB and loaded.tokenizer.encode("记忆") == model.tokenizer.encode("记忆")
    idx = torch.randint(0, len(VOCAB), (2, 9))
    assert torch.equal(loaded(idx)[0], model(idx)[0])
    if tie_weights:
        assert loaded.decoder.weight is loaded.encoder.weight


def test_half_precision_weights_load_as_float32(tmp_path):
    model = small().eval()
    model.save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    save_file({k: v.half() for k, v in weights.items()}, tmp_path / "model.safetensors")
    loaded = CharRNN.from_pretrained(tmp_path)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    idx = torch.randint(0, len(VOCAB), (1, 20))
    assert torch.allclose(loaded(idx)[0], model(idx)[0], atol=2e-2)


def test_a_renamed_parameter_is_an_error_not_random_weights(tmp_path):
    small().save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    weights["decoder.weight_renamed"] = weights.pop("decoder.weight")
    save_file(weights, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="missing \\['decoder.weight'\\].*unexpected \\['decoder.weight_renamed'\\]"):
        CharRNN.from_pretrained(tmp_path)


def test_a_wrong_shape_is_an_error(tmp_path):
    small().save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    weights["decoder.bias"] = torch.zeros(3)
    save_file(weights, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="decoder.bias has shape"):
        CharRNN.from_pretrained(tmp_path)


def test_non_finite_weights_are_refused(tmp_path):
    small().save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    weights["decoder.bias"][0] = float("nan")
    save_file(weights, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="non-finite"):
        CharRNN.from_pretrained(tmp_path)


@pytest.mark.parametrize("keep_bytes", [0, 7, 100, -10])
def test_truncated_or_empty_weights_give_a_clear_error(tmp_path, keep_bytes):
    small().save_pretrained(tmp_path)
    path = tmp_path / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[:keep_bytes] if keep_bytes >= 0 else data[:keep_bytes])
    with pytest.raises(CheckpointError, match="truncated or damaged"):
        CharRNN.from_pretrained(tmp_path)


def test_missing_weights_and_missing_or_bad_config(tmp_path):
    small().save_pretrained(tmp_path)
    config = tmp_path / "config.json"
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="does not exist"):
        CharRNN.from_pretrained(tmp_path)
    config.write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        CharRNN.from_pretrained(tmp_path)
    config.unlink()
    with pytest.raises(CheckpointError, match="no config.json"):
        CharRNN.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    "change",
    [
        {"cell": "transformer"},
        {"hidden_size": 0},
        {"num_layers": -2},
        {"vocab": ""},
        {"vocab": "aa"},
        {"dropout": 2},
    ],
)
def test_invalid_configs_are_refused_with_a_clear_message(tmp_path, change):
    small().save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config.update(change)
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="does not describe a valid CharRNN"):
        CharRNN.from_pretrained(tmp_path)


def test_a_vocabulary_that_disagrees_with_the_embedding_is_refused(tmp_path):
    small().save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["vocab"] = VOCAB + "XYZ"
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="vocabulary in config.json has 36 characters but the embedding has 33 rows"):
        CharRNN.from_pretrained(tmp_path)


def test_an_unreachable_hub_repo_is_a_clear_error():
    with pytest.raises(CheckpointError):
        CharRNN.from_pretrained("nobody/no-such-model")


@pytest.mark.parametrize(
    "idx",
    [torch.zeros(3, dtype=torch.long), torch.zeros(1, 3), torch.tensor([[0, len(VOCAB)]]), torch.tensor([[-1]])],
)
def test_bad_token_ids_are_refused(idx):
    with pytest.raises(ValueError):
        small()(idx)


def test_tied_weights_save_parameters():
    assert small(tie_weights=True).num_parameters() == small().num_parameters() - len(VOCAB) * 16
    with pytest.raises(ValueError, match="embedding_dim == hidden_size"):
        CharRNN(VOCAB, embedding_dim=8, hidden_size=16, tie_weights=True)


# ---- the AWD-LSTM regularizers -----------------------------------------------------------------

REGULARIZED = {"dropout": 0.3, "weight_drop": 0.5, "embedding_dropout": 0.2, "variational_dropout": True}


@pytest.mark.parametrize("cell", CELLS)
def test_regularizers_act_in_training_only(cell):
    plain, regularized = small(cell), small(cell, **REGULARIZED)
    regularized.load_state_dict(plain.state_dict())
    idx = torch.randint(0, len(VOCAB), (2, 9))
    assert torch.equal(plain.eval()(idx)[0], regularized.eval()(idx)[0])
    regularized.train()
    torch.manual_seed(1)
    first = regularized(idx)[0]
    second = regularized(idx)[0]
    assert not torch.allclose(first, second)  # a fresh mask each training pass


@pytest.mark.parametrize("cell", CELLS)
def test_weight_drop_trains_the_real_weights_and_leaves_them_untouched(cell):
    model = small(cell, weight_drop=0.5).train()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    logits, _ = model(torch.randint(0, len(VOCAB), (2, 7)))
    logits.sum().backward()
    hidden_to_hidden = model.rnn.weight_hh_l0
    assert hidden_to_hidden.grad is not None and hidden_to_hidden.grad.abs().sum() > 0
    # DropConnect: the gradient of a dropped entry is zero, and about half are dropped
    assert 0.3 < float((hidden_to_hidden.grad == 0).float().mean()) < 0.7
    for name, p in model.named_parameters():
        assert torch.equal(p.detach(), before[name]), name


def test_variational_dropout_keeps_one_mask_for_all_time_steps():
    model = small("lstm", dropout=0.5, variational_dropout=True).train()
    dropped = model._drop(torch.ones(3, 20, 16))
    assert torch.equal(dropped, dropped[:, :1].expand_as(dropped))  # the same mask at every step
    assert set(dropped.unique().tolist()) == {0.0, 2.0}
    per_step = small("lstm", dropout=0.5).train()._drop(torch.ones(3, 20, 16))
    assert not torch.equal(per_step, per_step[:, :1].expand_as(per_step))


def test_embedding_dropout_drops_whole_characters():
    model = small("lstm", embedding_dropout=0.5).train()
    idx = torch.tensor([[5, 5, 5, 6, 6, 6] * 4])
    embedded = model._embed(idx)[0]  # (T, E)
    for char in (5, 6):
        rows = embedded[idx[0] == char]
        assert torch.equal(rows, rows[:1].expand_as(rows))  # a character is kept or dropped everywhere
    weight = model.encoder.weight
    kept_or_dropped = [torch.equal(embedded[i], torch.zeros_like(weight[0])) or
                       torch.allclose(embedded[i], weight[idx[0, i]] * 2) for i in range(idx.shape[1])]
    assert all(kept_or_dropped)


@pytest.mark.parametrize("name,value", [("weight_drop", 1.0), ("embedding_dropout", -0.1), ("weight_drop", True)])
def test_bad_regularizer_values_are_refused(name, value):
    with pytest.raises(ValueError, match=name):
        CharRNN(VOCAB, **{name: value})
    with pytest.raises(ValueError, match="variational_dropout"):
        CharRNN(VOCAB, variational_dropout="yes")


def test_regularizer_settings_travel_in_the_config(tmp_path):
    model = small("gru", **REGULARIZED, tie_weights=True)
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert {k: config[k] for k in REGULARIZED} == REGULARIZED and config["tie_weights"] is True
    loaded = CharRNN.from_pretrained(tmp_path)
    assert loaded.weight_drop == 0.5 and loaded.variational_dropout is True
    assert loaded.decoder.weight is loaded.encoder.weight


def test_a_config_written_before_the_regularizers_existed_still_loads(tmp_path):
    small("lstm").save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    for name in REGULARIZED:
        del config[name]
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded = CharRNN.from_pretrained(tmp_path)
    assert loaded.weight_drop == 0.0 and loaded.variational_dropout is False


def test_tied_weights_start_small_so_the_first_logits_are_tame():
    model = small("lstm", tie_weights=True).eval()
    assert float(model.encoder.weight.detach().abs().max()) <= 0.1
    with torch.no_grad():
        logits, _ = model(torch.randint(0, len(VOCAB), (2, 30)))
    uniform = torch.log(torch.tensor(float(len(VOCAB))))
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, len(VOCAB)), torch.zeros(60, dtype=torch.long))
    assert abs(float(loss) - float(uniform)) < 0.5


@pytest.mark.parametrize("tie", [False, True])
def test_weights_viewed_into_one_flat_buffer_still_save(tmp_path, tie):
    """On a GPU, cuDNN keeps an LSTM's weights as views into one buffer; saving must still work."""
    model = small("lstm", tie_weights=tie).eval()
    parameters = list(model.rnn.parameters())
    flat = torch.cat([p.detach().reshape(-1) for p in parameters])
    offset = 0
    for p in parameters:
        p.data = flat[offset : offset + p.numel()].view_as(p)
        offset += p.numel()
    model.save_pretrained(tmp_path)
    loaded = CharRNN.from_pretrained(tmp_path)
    idx = torch.randint(0, len(VOCAB), (2, 6))
    assert torch.equal(model(idx)[0], loaded(idx)[0])
