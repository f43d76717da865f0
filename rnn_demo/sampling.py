"""Sampling text from a CharRNN, one character at a time with the state carried.

The prompt primes the hidden state in one forward call; after that every step feeds only the
character just sampled (through :class:`rnn_demo.engine.Stepper`), so the cost per character
is flat however long the text grows (never re-running the prefix). Each call owns its random generator, seeded from ``seed``:
no global RNG is touched, so concurrent calls cannot disturb each other and the same seed
always gives the same text.

``sample_steps`` is the core and yields a :class:`Step` per character (the character, its
probability distribution and the state after it), for views inside the network;
``stream`` yields the characters and ``generate`` joins them.

Prompt policy: characters the vocabulary lacks are skipped (see :func:`encode_prompt`, which
reports them). An empty prompt, or one with no known character, starts from a newline (or
the vocabulary's first character when it has no newline), i.e. "the start of a paragraph".
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from rnn_demo.engine import Stepper
from rnn_demo.model import CharRNN, Hidden
from rnn_demo.tokenizer import Encoding

MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class SamplingSettings:
    """How the next character is drawn from the model's distribution.

    temperature: 0 = greedy (always the most likely character); 1 = the model's own
        distribution; above 1 flatter, below 1 sharper.
    top_k: keep only the k most likely characters (0 = all).
    top_p: keep the smallest set of most likely characters whose probability reaches top_p
        (1.0 = all). Applied after top_k.
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0

    def __post_init__(self):
        if isinstance(self.temperature, bool) or not isinstance(self.temperature, (int, float)):
            raise ValueError(f"temperature must be a number, got {self.temperature!r}")
        if not math.isfinite(self.temperature) or self.temperature < 0:
            raise ValueError(f"temperature must be a finite number >= 0, got {self.temperature!r}")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
            raise ValueError(f"top_k must be an integer >= 0 (0 = off), got {self.top_k!r}")
        if isinstance(self.top_p, bool) or not isinstance(self.top_p, (int, float)):
            raise ValueError(f"top_p must be a number, got {self.top_p!r}")
        if not (0 < self.top_p <= 1):  # also false for NaN
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")


@dataclass(frozen=True)
class Step:
    """One sampled character with what the model saw when choosing it."""

    char: str
    token_id: int
    probs: torch.Tensor  # (vocab_size,) the distribution it was drawn from, after temperature/top-k/top-p
    hidden: Hidden  # the state after feeding this character back in


def encode_prompt(model: CharRNN, prompt: str) -> Encoding:
    """The prompt's token ids (unknown characters skipped and listed in ``skipped``).

    When no known character is left, the ids are the start character (newline if the
    vocabulary has one, else its first character).
    """
    encoding = model.tokenizer.encode_known(prompt)
    if encoding.ids:
        return encoding
    start = model.tokenizer.encode_known("\n").ids or [0]
    return Encoding(ids=start, skipped=encoding.skipped)


def check_length(max_new_chars) -> None:
    """Raise ValueError unless ``max_new_chars`` is an int >= 0."""
    if isinstance(max_new_chars, bool) or not isinstance(max_new_chars, int) or max_new_chars < 0:
        raise ValueError(f"max_new_chars must be an integer >= 0, got {max_new_chars!r}")


def make_generator(seed: int | None, device: torch.device | str = "cpu") -> torch.Generator:
    """A private random generator: seeded from ``seed``, or from the OS when it is None."""
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
        return generator
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be an integer in 0..{MAX_SEED} (or None for random), got {seed!r}")
    generator.manual_seed(seed)
    return generator


def next_token_distribution(logits: torch.Tensor, settings: SamplingSettings) -> torch.Tensor:
    """Probabilities (..., vocab), float32, to draw from after temperature, top-k and top-p.

    With temperature 0 all the mass sits on the most likely token.
    """
    # float64: any positive temperature a Python float can hold stays positive when divided by
    # (in float32, 1e-300 would become 0 and the division 0/0).
    logits = logits.double()
    if settings.temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(torch.float32)
    # Shifted so the largest is 0 before dividing: a tiny temperature then gives -inf, never inf - inf.
    logits = (logits - logits.max(dim=-1, keepdim=True).values) / settings.temperature
    if 0 < settings.top_k < logits.shape[-1]:
        kth_largest = torch.topk(logits, settings.top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth_largest, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if settings.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
        mass_before = sorted_probs.cumsum(-1) - sorted_probs  # probability of the more likely tokens
        sorted_probs = sorted_probs.masked_fill(mass_before >= settings.top_p, 0.0)  # keeps at least the top one
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
        probs = probs / probs.sum(-1, keepdim=True)
    return probs.to(torch.float32)


def exponential_noise(vocab_size: int, generator: torch.Generator) -> torch.Tensor:
    """The random numbers one draw takes from ``generator``: (vocab_size,) float32, Exp(1)."""
    return torch.empty(vocab_size, dtype=torch.float32, device=generator.device).exponential_(1, generator=generator)


def choose_tokens(probs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """One token per row: probs (B, V) and noise (B, V) from :func:`exponential_noise` -> (B,).

    argmax(p / q) with q ~ Exp(1) picks token i with probability p_i (the exponential race; the
    Gumbel-max trick with exp applied). It is what ``torch.multinomial(p, 1)`` computes on CPU,
    draw for draw (tests/test_sampling.py checks that the same seeds give the same tokens);
    written out here so that a batch of streams, each with its own generator, can share the
    division and the argmax, and every stream still draws exactly what it draws alone.
    """
    return (probs / noise).argmax(dim=-1)


def draw_token(probs: torch.Tensor, generator: torch.Generator) -> int:
    """One token id drawn from probs (V,) with ``generator``."""
    noise = exponential_noise(probs.shape[-1], generator)
    return int(choose_tokens(probs.unsqueeze(0), noise.unsqueeze(0))[0])


def sample_steps(
    model: CharRNN,
    prompt: str,
    max_new_chars: int,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int | None = None,
) -> Iterator[Step]:
    """Yield ``max_new_chars`` sampled characters as :class:`Step` records."""
    settings = SamplingSettings(temperature, top_k, top_p)
    check_length(max_new_chars)
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a str, got {type(prompt).__name__}")
    device = model.decoder.weight.device
    generator = make_generator(seed, device)
    return _sample_steps(model, encode_prompt(model, prompt).ids, max_new_chars, settings, generator)


def _sample_steps(model, prompt_ids, max_new_chars, settings, generator) -> Iterator[Step]:
    # A generator function of its own, so that argument errors above are raised at call time.
    if max_new_chars == 0:
        return
    was_training = model.training
    if was_training:  # dropout must be off while sampling
        model.eval()
    try:
        # Inference mode is entered per step and never held across a yield: torch's modes are
        # per thread, and a server may resume (or close) this generator in another thread.
        with torch.inference_mode():
            device = model.decoder.weight.device
            idx = torch.tensor([prompt_ids], dtype=torch.long, device=device)  # (1, P)
            logits, hidden = model(idx)  # prime the state on the whole prompt at once
            logits = logits[:, -1]  # (1, V)
            stepper = Stepper(model)
        for _ in range(max_new_chars):
            with torch.inference_mode():
                probs = next_token_distribution(logits[0], settings)  # (V,)
                token_id = draw_token(probs, generator)
                token = torch.tensor([token_id], device=device)  # (1,)
                logits, hidden = stepper.step(token, hidden)  # (1, V), one character in
            yield Step(model.vocab[token_id], token_id, probs, hidden)
    finally:
        if was_training:
            model.train()


def stream(
    model: CharRNN,
    prompt: str,
    max_new_chars: int,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int | None = None,
) -> Iterator[str]:
    """Yield the continuation of ``prompt`` one character at a time."""
    steps = sample_steps(model, prompt, max_new_chars, temperature, top_k, top_p, seed)
    return (step.char for step in steps)


def generate(
    model: CharRNN,
    prompt: str,
    max_new_chars: int,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int | None = None,
) -> str:
    """The continuation of ``prompt`` (without the prompt), ``max_new_chars`` characters long."""
    return "".join(stream(model, prompt, max_new_chars, temperature, top_k, top_p, seed))
