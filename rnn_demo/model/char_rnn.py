"""The character-level language model: embedding -> recurrent stack -> linear head.

``CharRNN`` is a ``PyTorchModelHubMixin``: its constructor arguments (the vocabulary
included) become ``config.json`` and its weights ``model.safetensors``, so a saved folder or
a Hub repo is all that is needed to rebuild it. Loading is strict and never unpickles.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from huggingface_hub import PyTorchModelHubMixin, hf_hub_download
from torch import nn
from torch.nn import functional as F

from rnn_demo.model.checkpoint import CELLS, CONFIG_NAME, WEIGHTS_NAME, CheckpointError
from rnn_demo.model.rnn import RNN
from rnn_demo.model.tokenizer import CharTokenizer

__all__ = ["CELLS", "CONFIG_NAME", "WEIGHTS_NAME", "CharRNN", "CheckpointError", "Hidden", "bits_per_char"]

# What a hidden state is: a tensor (num_layers, batch, hidden_size) for rnn/gru, and the
# pair (h, c) of such tensors for lstm.
Hidden = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


class CharRNN(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="rnn-demo",
    tags=["char-rnn", "text-generation", "rnn"],
    pipeline_tag="text-generation",
    license="mit",
):
    """A character-level recurrent language model.

    Args:
        vocab: the vocabulary, one string; the character at index i has token id i.
        cell: "rnn" (the hand-written :class:`rnn_demo.model.rnn.RNN`), "gru" or "lstm" (torch's).
        hidden_size: features in each layer's hidden state.
        num_layers: stacked recurrent layers.
        dropout: dropout probability on the embeddings, between layers and before the head
            (training mode only).
        embedding_dim: size of the character embedding; None means hidden_size.
        tie_weights: share the embedding matrix with the output head (needs
            embedding_dim == hidden_size); saves vocab_size * hidden_size parameters.
        weight_drop: DropConnect on the hidden-to-hidden matrices (``weight_hh_l*``): each
            training forward pass drops this fraction of their entries, one mask for all time
            steps (AWD-LSTM's weight drop; regularizes the recurrence itself).
        embedding_dropout: drop this fraction of the characters' embedding vectors (whole rows of
            the embedding matrix) in each training forward pass.
        variational_dropout: use one dropout mask per sequence for all time steps on the
            embeddings and before the head (variational / "locked" dropout), instead of a
            fresh mask at every step. Dropout between layers stays torch's per-step dropout.

    The regularizers act in training mode only; an eval-mode model computes the same function
    whatever they are set to.
    """

    def __init__(
        self,
        vocab: str,
        cell: str = "lstm",
        hidden_size: int = 256,
        num_layers: int = 2,
        dropout: float = 0.0,
        embedding_dim: int | None = None,
        tie_weights: bool = False,
        weight_drop: float = 0.0,
        embedding_dropout: float = 0.0,
        variational_dropout: bool = False,
    ):
        super().__init__()
        self.tokenizer = CharTokenizer(vocab)  # validates the vocabulary
        if cell not in CELLS:
            raise ValueError(f"Unknown cell {cell!r}; choose one of {', '.join(CELLS)}")
        _check_positive_int("hidden_size", hidden_size)
        _check_positive_int("num_layers", num_layers)
        if embedding_dim is None:
            embedding_dim = hidden_size
        _check_positive_int("embedding_dim", embedding_dim)
        for name, value in (("dropout", dropout), ("weight_drop", weight_drop), ("embedding_dropout", embedding_dropout)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
        if not isinstance(variational_dropout, bool):
            raise ValueError(f"variational_dropout must be true or false, got {variational_dropout!r}")
        if tie_weights and embedding_dim != hidden_size:
            raise ValueError("tie_weights needs embedding_dim == hidden_size")

        self.vocab = vocab
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = float(dropout)
        self.embedding_dim = embedding_dim
        self.tie_weights = tie_weights
        self.weight_drop = float(weight_drop)
        self.embedding_dropout = float(embedding_dropout)
        self.variational_dropout = variational_dropout

        self.encoder = nn.Embedding(len(vocab), embedding_dim)
        between_layers = self.dropout if num_layers > 1 else 0.0
        if cell == "rnn":
            self.rnn = RNN(embedding_dim, hidden_size, num_layers, batch_first=True, dropout=between_layers)
        else:
            recurrent_class = nn.GRU if cell == "gru" else nn.LSTM
            self.rnn = recurrent_class(embedding_dim, hidden_size, num_layers, batch_first=True, dropout=between_layers)
        self.drop = nn.Dropout(self.dropout)
        self.decoder = nn.Linear(hidden_size, len(vocab))
        if tie_weights:
            # The shared matrix is also the output layer: start it small (as AWD-LSTM does), not
            # at nn.Embedding's N(0, 1), whose rows of norm ~sqrt(hidden_size) give huge logits.
            nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
            self.decoder.weight = self.encoder.weight

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def num_parameters(self) -> int:
        """Trainable parameters, counting tied weights once."""
        return sum(p.numel() for p in self.parameters())

    def init_hidden(self, batch_size: int) -> Hidden:
        """A zero state for ``batch_size`` sequences, on the model's device and dtype."""
        weight = self.decoder.weight
        zeros = weight.new_zeros(self.num_layers, batch_size, self.hidden_size)
        if self.cell == "lstm":
            return zeros, weight.new_zeros(self.num_layers, batch_size, self.hidden_size)
        return zeros

    def forward(self, idx: torch.Tensor, hidden: Hidden | None = None) -> tuple[torch.Tensor, Hidden]:
        """Logits for the next character after each position, and the state after the last one.

        Args:
            idx: token ids, LongTensor (batch, time).
            hidden: the state to start from (``init_hidden`` zeros if None).
        Returns:
            logits (batch, time, vocab_size) and the new hidden state.
        """
        if not isinstance(idx, torch.Tensor) or idx.dtype != torch.long or idx.dim() != 2:
            got = f"{idx.dtype} tensor of {idx.dim()} dims" if isinstance(idx, torch.Tensor) else type(idx).__name__
            raise ValueError(f"idx must be a LongTensor of shape (batch, time), got {got}")
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= self.vocab_size):
            raise ValueError(f"token ids must be in 0..{self.vocab_size - 1}")
        embedded = self._drop(self._embed(idx))  # (B, T, E)
        if hidden is None:
            hidden = self.init_hidden(idx.shape[0])
        if self.training and self.weight_drop:
            output, hidden = self._recur_with_dropped_weights(embedded, hidden)
        else:
            output, hidden = self.rnn(embedded, hidden)  # (B, T, H)
        logits = self.decoder(self._drop(output))  # (B, T, V)
        return logits, hidden

    # ---- the regularizers (training mode only) --------------------------------------------

    def _embed(self, idx: torch.Tensor) -> torch.Tensor:
        weight = self.encoder.weight
        if self.training and self.embedding_dropout:
            keep = 1.0 - self.embedding_dropout
            rows = weight.new_empty(weight.shape[0], 1).bernoulli_(keep) / keep  # (V, 1)
            weight = weight * rows
        return F.embedding(idx, weight)

    def _drop(self, x: torch.Tensor) -> torch.Tensor:
        """Dropout on a (B, T, F) activation: per element, or one mask per sequence (variational)."""
        if not (self.training and self.dropout):
            return x
        if not self.variational_dropout:
            return self.drop(x)
        keep = 1.0 - self.dropout
        mask = x.new_empty(x.shape[0], 1, x.shape[2]).bernoulli_(keep) / keep  # (B, 1, F)
        return x * mask

    def _recur_with_dropped_weights(self, embedded: torch.Tensor, hidden: Hidden):
        """Run the recurrent stack with DropConnect on its hidden-to-hidden matrices.

        The dropped matrices are computed from the parameters on every call, so gradients reach
        the real weights; ``functional_call`` swaps them in for this call only.
        """
        weights = {
            name: F.dropout(parameter, self.weight_drop, training=True) if name.startswith("weight_hh") else parameter
            for name, parameter in self.rnn.named_parameters()
        }
        with warnings.catch_warnings():
            # cuDNN copies non-contiguous weights into one chunk per call and says so; expected here.
            warnings.filterwarnings("ignore", message="RNN module weights are not part of single contiguous chunk")
            return torch.func.functional_call(self.rnn, weights, (embedded, hidden))

    # ---- saving and loading ---------------------------------------------------------------

    def _save_pretrained(self, save_directory: Path) -> None:
        """Write ``model.safetensors`` (:meth:`save_weights`)."""
        self.save_weights(Path(save_directory) / WEIGHTS_NAME)

    def save_weights(self, path: str | os.PathLike, metadata: Mapping[str, str] | None = None) -> None:
        """Write the weights as a safetensors file: every tensor a compact CPU copy, a tied matrix once.
        ``metadata`` adds strings to the file's header (a training run records there the validation
        loss of these weights: see ``RunFolder.save_best``).

        (On a GPU, cuDNN keeps an LSTM's or GRU's weights as views into one flat buffer, which
        safetensors' own ``save_model`` refuses to write.)
        """
        from safetensors.torch import save_file

        tensors = {name: tensor.detach().to("cpu", copy=True).contiguous() for name, tensor in self.state_dict().items()}
        if self.tie_weights:
            tensors.pop("decoder.weight")
        save_file(tensors, str(path), metadata={**(metadata or {}), "format": "pt"})

    # ---- loading -------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, **kwargs) -> CharRNN:
        """Load a ``save_pretrained`` folder or a Hub repo id, strictly, as float32.

        Raises :class:`CheckpointError` with a clear message for a missing, truncated,
        tampered or inconsistent checkpoint.
        """
        path = str(pretrained_model_name_or_path)
        if os.path.isdir(path):
            config_path = os.path.join(path, CONFIG_NAME)
            if not os.path.isfile(config_path):
                raise CheckpointError(f"{path} is not a model folder: it has no {CONFIG_NAME}")
            try:
                with open(config_path, encoding="utf-8") as file:
                    config = json.load(file)
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
                raise CheckpointError(f"{config_path} is not valid JSON: {error}") from None
            if not isinstance(config, dict):
                raise CheckpointError(f"{config_path} must hold a JSON object")
        kwargs.setdefault("strict", True)
        try:
            return super().from_pretrained(path, **kwargs)
        except CheckpointError:
            raise
        except Exception as error:  # offline, unknown repo, no access, bad config.json on the Hub
            if os.path.isdir(path):
                raise
            raise CheckpointError(
                f"Could not load {path!r}: it is not a local model folder, and the Hub said: {error}"
            ) from None

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None,
        cache_dir,
        force_download: bool,
        local_files_only: bool,
        token,
        map_location: str = "cpu",
        strict: bool = True,
        **model_kwargs,
    ) -> CharRNN:
        try:
            model = cls(**model_kwargs)
        except (TypeError, ValueError) as error:
            raise CheckpointError(f"{model_id}: {CONFIG_NAME} does not describe a valid CharRNN: {error}") from None
        if os.path.isdir(model_id):
            weights_path = os.path.join(model_id, WEIGHTS_NAME)
        else:
            try:
                weights_path = hf_hub_download(
                    repo_id=model_id,
                    filename=WEIGHTS_NAME,
                    revision=revision,
                    cache_dir=cache_dir,
                    force_download=force_download,
                    token=token,
                    local_files_only=local_files_only,
                )
            except Exception as error:  # network, auth, missing file: all end the same way
                raise CheckpointError(f"Could not fetch {WEIGHTS_NAME} of {model_id!r} from the Hub: {error}") from None
        model.load_weights(weights_path, strict=strict)
        return model.to(map_location).eval()

    def load_weights(self, weights_path: str | os.PathLike, strict: bool = True) -> None:
        """Load a safetensors file into this model; float16/bfloat16 weights become float32."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        if not os.path.isfile(weights_path):
            raise CheckpointError(f"Weights file {weights_path} does not exist")
        try:
            tensors = load_file(str(weights_path))
        except (SafetensorError, OSError, ValueError) as error:
            raise CheckpointError(
                f"{weights_path} is not a complete safetensors file (truncated or damaged?): {error}"
            ) from None
        own = self.state_dict()
        # Tied weights are stored once by safetensors; either name may be the one kept.
        if self.tie_weights:
            for shared, alias in (("decoder.weight", "encoder.weight"), ("encoder.weight", "decoder.weight")):
                if alias in tensors and shared not in tensors:
                    tensors[shared] = tensors[alias]
        embedding = tensors.get("encoder.weight")
        if embedding is not None and embedding.dim() == 2 and embedding.shape[0] != self.vocab_size:
            raise CheckpointError(
                f"{weights_path}: the vocabulary in {CONFIG_NAME} has {self.vocab_size} characters "
                f"but the embedding has {embedding.shape[0]} rows"
            )
        missing = sorted(set(own) - set(tensors))
        unexpected = sorted(set(tensors) - set(own))
        if strict and (missing or unexpected):
            raise CheckpointError(
                f"{weights_path} does not match the model in {CONFIG_NAME}: "
                f"missing {missing or 'nothing'}, unexpected {unexpected or 'nothing'}"
            )
        for name, tensor in tensors.items():
            if name not in own:
                continue
            if tuple(tensor.shape) != tuple(own[name].shape):
                raise CheckpointError(
                    f"{weights_path}: {name} has shape {tuple(tensor.shape)}, the config needs {tuple(own[name].shape)}"
                )
            if not tensor.is_floating_point() or not bool(torch.isfinite(tensor).all()):
                raise CheckpointError(f"{weights_path}: {name} holds non-finite or non-float values")
            tensors[name] = tensor.to(own[name].dtype)
        self.load_state_dict({k: v for k, v in tensors.items() if k in own}, strict=strict)


def bits_per_char(nats: float) -> float:
    """Convert a loss in nats per character to bits per character."""
    return nats / math.log(2)
