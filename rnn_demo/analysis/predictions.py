"""What a CharRNN predicts at each character of a text, from one forward pass.

Entry ``i`` of a reading is about the ``i``-th known character of the text: the probability the
model gave it after reading the characters before it, its surprise ``-log2 p`` in bits, and the
characters the model found most likely at that position. The first character has no prediction
(nothing came before it), so a text of ``n`` characters scores ``n - 1`` of them, the same
convention as the training's evaluation (:func:`rnn_demo.training.loop.evaluate`, whose
``metrics.json`` bits/char :func:`score` reproduces on the validation split).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch

from rnn_demo.model import CharRNN
from rnn_demo.model.tokenizer import Encoding

# Characters fed to the model per forward call, with the state carried from one call to the next:
# the result is the same as one call over the whole text, with bounded memory for long texts.
# evaluate() reads the validation split in chunks of the same length.
CHUNK_LEN = 2048
LN2 = math.log(2)


@contextlib.contextmanager
def evaluating(model: CharRNN):
    """``model`` in eval mode (no dropout) and without autograd, restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def text_ids(model: CharRNN, text: str) -> Encoding:
    """The ids of the characters of ``text`` that the model knows; the others are in ``skipped``."""
    return model.tokenizer.encode_known(text)


@dataclass(frozen=True)
class Reading:
    """What the model predicted along a text of n known characters."""

    target_log_probs: torch.Tensor  # (n - 1,) float64: ln P(char_i | chars before it), i = 1..n-1
    top_ids: torch.Tensor | None  # (n - 1, k) ids of the k most likely characters at position i
    top_probs: torch.Tensor | None  # (n - 1, k) their probabilities, descending


def read(model: CharRNN, ids: list[int] | torch.Tensor, top_k: int = 0, chunk_len: int = CHUNK_LEN) -> Reading:
    """One pass over ``ids`` from the zero state: every next-character prediction (and the top_k
    alternatives at each position when ``top_k > 0``)."""
    device = model.decoder.weight.device
    ids = torch.as_tensor(ids, dtype=torch.long).to(device).view(1, -1)  # (1, n)
    inputs, targets = ids[:, :-1], ids[0, 1:]  # the last character predicts nothing in the text
    target_parts, top_id_parts, top_prob_parts = [], [], []
    hidden = None
    with evaluating(model):
        for start in range(0, inputs.shape[1], chunk_len):
            logits, hidden = model(inputs[:, start : start + chunk_len], hidden)  # (1, T, V)
            log_probs = torch.log_softmax(logits[0].float(), dim=-1)  # (T, V)
            chunk_targets = targets[start : start + chunk_len].unsqueeze(1)  # (T, 1)
            target_parts.append(log_probs.gather(1, chunk_targets).squeeze(1).double())
            if top_k:
                top = log_probs.topk(top_k, dim=-1)  # sorted, most likely first
                top_id_parts.append(top.indices)
                top_prob_parts.append(top.values.exp())
    empty = torch.zeros(0, dtype=torch.float64)
    return Reading(
        target_log_probs=torch.cat(target_parts).cpu() if target_parts else empty,
        top_ids=(torch.cat(top_id_parts).cpu() if top_id_parts else torch.zeros(0, top_k, dtype=torch.long))
        if top_k
        else None,
        top_probs=(torch.cat(top_prob_parts).cpu() if top_prob_parts else torch.zeros(0, top_k)) if top_k else None,
    )


def mean_bits(target_log_probs: torch.Tensor) -> float | None:
    """Bits per character of a reading; None when it scored no character."""
    if target_log_probs.numel() == 0:
        return None
    return float(-target_log_probs.mean() / LN2)


def explain(model: CharRNN, text: str, top_k: int = 5) -> dict:
    """The model's view of ``text``, character by character.

    Returns ``{"bits_per_char", "skipped", "chars"}``: ``chars`` has one entry per known
    character, ``{"char", "prob", "bits", "top"}``, where ``prob`` is P(char | the characters
    before it), ``bits`` is ``-log2 prob`` and ``top`` the ``top_k`` likeliest characters at that
    position as ``[char, prob]`` pairs, most likely first. Entry 0 has ``prob`` and ``bits`` None
    and an empty ``top``. ``bits_per_char`` is the mean of ``bits`` over entries 1 to n-1 (None
    for fewer than two characters); ``skipped`` lists the distinct unknown characters.
    """
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= model.vocab_size:
        raise ValueError(f"top_k must be an integer from 1 to {model.vocab_size}, got {top_k!r}")
    encoding = text_ids(model, text)
    vocab = model.vocab
    chars = [vocab[i] for i in encoding.ids]
    entries = []
    if chars:
        entries.append({"char": chars[0], "prob": None, "bits": None, "top": []})
    if len(chars) > 1:
        reading = read(model, encoding.ids, top_k)
        log_probs = reading.target_log_probs.tolist()
        top_ids, top_probs = reading.top_ids.tolist(), reading.top_probs.tolist()
        for i, char in enumerate(chars[1:]):
            entries.append(
                {
                    "char": char,
                    "prob": math.exp(log_probs[i]),
                    "bits": -log_probs[i] / LN2,
                    "top": [[vocab[j], p] for j, p in zip(top_ids[i], top_probs[i])],
                }
            )
        bits = mean_bits(reading.target_log_probs)
    else:
        bits = None
    return {"bits_per_char": bits, "skipped": list(encoding.skipped), "chars": entries}


def score(model: CharRNN, text: str) -> dict:
    """How surprising ``text`` is to the model: ``{"bits_per_char", "chars_scored", "skipped"}``,
    by the convention of :func:`explain` (the first known character is not scored)."""
    encoding = text_ids(model, text)
    reading = read(model, encoding.ids) if len(encoding.ids) > 1 else None
    log_probs = reading.target_log_probs if reading is not None else torch.zeros(0, dtype=torch.float64)
    return {
        "bits_per_char": mean_bits(log_probs),
        "chars_scored": int(log_probs.numel()),
        "skipped": list(encoding.skipped),
    }
