"""Sampling text from a CharRNN, one character at a time with the state carried.

The prompt primes the hidden state once (see :func:`prime`); after that every step feeds only
the character just sampled (through :class:`rnn_demo.generation.stepper.Stepper`), so the cost per
character is flat however long the text grows (never re-running the prefix). One stream's
characters are drawn and stepped several at a time in one call
(:meth:`~rnn_demo.generation.stepper.Stepper.sample`); the distributions and draws are those of
:func:`next_token_distribution` and :func:`choose_tokens` (the per-character reference the tests
compare with), and the server draws a batch of streams with
:meth:`~rnn_demo.generation.stepper.Stepper.sample_rows`. Either engine computes them, the compiled
kernels or the NumPy reference (``rnn_demo.generation.engines``): with one engine a seed gives the
same text either way, and the two engines' texts part only at a draw that is a near tie (see
``rnn_demo/generation/reference.py``). Each call owns its random
generator, seeded from ``seed`` (see :class:`TokenDraws`): no global RNG is touched, so
concurrent calls cannot disturb each other and the same seed always gives the same text.

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
from typing import NamedTuple

import numpy as np
import torch

from rnn_demo.generation import engines, reference
from rnn_demo.generation.engines import Engine
from rnn_demo.generation.stepper import State, Stepper, state_arrays, state_tensors
from rnn_demo.model import CharRNN, Hidden
from rnn_demo.model.tokenizer import Encoding

MAX_SEED = 2**63 - 1
# Prompts up to this many characters are primed step by step (one compiled call a character),
# longer ones by one CharRNN.forward call, whose fused layers win on long inputs: a forward call
# has a fixed cost of its own that only a long prompt pays back, and around 32 characters the
# two cost about the same for the shipped models (one thread).
PRIME_BY_STEPS_MAX = 32
# Draws whose random numbers are drawn in one call (see TokenDraws).
NOISE_BLOCK = 64


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


class Step(NamedTuple):
    """One sampled character with what the model saw when choosing it."""

    char: str
    token_id: int
    probs: np.ndarray  # (vocab_size,) float32: the distribution it was drawn from, after temperature/top-k/top-p
    state: State  # the state after feeding this character back in (engine arrays, (L, 1, H))

    @property
    def hidden(self) -> Hidden:
        """:attr:`state` as torch tensors, the form ``CharRNN.forward`` takes."""
        return state_tensors(self.state)


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


def check_seed(seed) -> None:
    """Raise ValueError unless ``seed`` is None (random) or an int in 0..MAX_SEED."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED):
        raise ValueError(f"seed must be an integer in 0..{MAX_SEED} (or None for random), got {seed!r}")


def make_generator(seed: int | None) -> torch.Generator:
    """A private random generator (CPU): seeded from ``seed``, or from the OS when it is None."""
    check_seed(seed)
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator


def next_token_distribution(logits: np.ndarray, settings: SamplingSettings) -> np.ndarray:
    """Probabilities (..., vocab), float32, to draw from after temperature, top-k and top-p.

    Computed in float64 (any positive temperature a Python float can hold stays positive when
    divided by; in float32, 1e-300 would become 0 and the division 0/0), each row on its own by
    :func:`rnn_demo.generation.reference.distribution` (what the kernels compute too): a row comes
    out the same alone or in a batch. With
    temperature 0 all the mass sits on the most likely token.
    """
    logits = np.asarray(logits, dtype=np.float64)
    rows = np.ascontiguousarray(logits.reshape(-1, logits.shape[-1]))  # (R, V)
    probs = reference.distribution(rows, float(settings.temperature), settings.top_k, float(settings.top_p))
    return probs.reshape(logits.shape)


class TokenDraws:
    """The random draws of one generation: a private seeded ``torch.Generator`` (see
    :func:`make_generator`), from which the noise of several draws is drawn in one call:
    ``min(draws, NOISE_BLOCK)`` at a time, ``draws`` being how many the generation will make (it
    may make more). torch fills a tensor from its CPU generator in order, so a block holds
    exactly the numbers that as many draws one at a time would take (tests/test_batching.py
    checks the draws against torch.multinomial's); one call instead of one per character saves a
    torch call's fixed cost on every draw."""

    def __init__(self, seed: int | None, vocab_size: int, draws: int = NOISE_BLOCK):
        if isinstance(draws, bool) or not isinstance(draws, int) or draws < 0:
            raise ValueError(f"draws must be a whole number >= 0, got {draws!r}")
        self.generator = make_generator(seed)
        self._buffer = torch.empty(max(1, min(draws, NOISE_BLOCK)), vocab_size, dtype=torch.float32)
        self._noise = self._buffer.numpy()
        self._next = len(self._buffer)  # the row to hand out next; a block is drawn when it is used up

    def noise(self) -> np.ndarray:
        """The random numbers of the next draw: (V,) float32, Exp(1). A later call may overwrite them."""
        return self.noise_rows(1)[0]

    def noise_rows(self, count: int) -> np.ndarray:
        """The random numbers of the next draws, (n, V): ``count`` (>= 1) of them, or fewer, as
        many as are left of the block drawn last (a new block is drawn when it is used up). A
        later call may overwrite them."""
        if self._next == len(self._noise):
            self._buffer.exponential_(1, generator=self.generator)
            self._next = 0
        start, self._next = self._next, min(len(self._noise), self._next + count)
        return self._noise[start : self._next]

    def draw(self, probs: np.ndarray) -> int:
        """One token id drawn from probs (V,): what :func:`choose_tokens` picks for this row."""
        return int(reference.choose(np.ascontiguousarray(probs, np.float32)[None], self.noise()[None])[0])


def choose_tokens(probs: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """One token per row: probs (B, V) and noise (B, V) from :meth:`TokenDraws.noise` -> (B,).

    argmax(p / q) with q ~ Exp(1) picks token i with probability p_i (the exponential race; the
    Gumbel-max trick with exp applied). It is what ``torch.multinomial(p, 1)`` computes on CPU,
    draw for draw (tests/test_batching.py checks that the same seeds give the same tokens);
    written out (:func:`rnn_demo.generation.reference.choose`) so that a batch of streams, each with its own
    generator, can share one call, and every stream still draws exactly what it draws alone.
    """
    return reference.choose(np.ascontiguousarray(probs, np.float32), np.ascontiguousarray(noise, np.float32))


def prime(model: CharRNN, stepper: Stepper, prompt_ids: list[int]) -> tuple[np.ndarray, State]:
    """Run the prompt through the model (in eval mode; ``stepper`` made from it): the logits after
    its last character (1, V) and the state after it, as arrays for ``stepper``.

    A prompt of up to :data:`PRIME_BY_STEPS_MAX` characters is stepped through one character at a
    time, a longer one goes through ``CharRNN.forward`` in one call. Both give the same state to
    float rounding, and the way depends on the prompt's length alone, so a prompt always primes
    the same way, bit for bit.
    """
    if not prompt_ids:
        raise ValueError("the prompt must have at least one token (see encode_prompt)")
    if len(prompt_ids) <= PRIME_BY_STEPS_MAX:
        state = stepper.zero_state(1)
        for token in prompt_ids:
            logits, state = stepper.step(np.array([token]), state)
        return logits, state
    with torch.inference_mode():
        idx = torch.tensor([prompt_ids], dtype=torch.long, device=model.decoder.weight.device)  # (1, P)
        logits, hidden = model(idx)
        return logits[:, -1].to("cpu", torch.float32).numpy(), state_arrays(hidden)


def sample_steps(
    model: CharRNN,
    prompt: str,
    max_new_chars: int,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int | None = None,
    engine: Engine | None = None,
) -> Iterator[Step]:
    """Yield ``max_new_chars`` sampled characters as :class:`Step` records, computed by ``engine``
    (by default the compiled one if it is ready, else the reference one, kept to the end; see
    ``rnn_demo.generation.engines``)."""
    settings = SamplingSettings(temperature, top_k, top_p)
    check_length(max_new_chars)
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a str, got {type(prompt).__name__}")
    draws = TokenDraws(seed, model.vocab_size, max_new_chars)
    engine = engine if engine is not None else engines.current()
    return _sample_steps(model, encode_prompt(model, prompt).ids, max_new_chars, settings, draws, engine)


def _sample_steps(model, prompt_ids, max_new_chars, settings, draws: TokenDraws, engine: Engine) -> Iterator[Step]:
    # A generator function of its own, so that argument errors above are raised at call time.
    # It holds no torch mode across a yield (modes are per thread, and a server may resume or
    # close this generator in another thread): the steps are NumPy.
    if max_new_chars == 0:
        return
    was_training = model.training
    if was_training:  # dropout must be off while sampling
        model.eval()
    try:
        stepper = Stepper(model, engine)
        logits, state = prime(model, stepper, prompt_ids)  # (1, V)
    finally:
        if was_training:
            model.train()
    vocab = model.vocab
    made = 0
    while made < max_new_chars:
        # Characters are drawn and stepped in one compiled call for as many as the noise block
        # has left, up to as many as were made so far (1, 1, 2, 4, ... 64): the first character
        # comes after one step, and a stream closed early has stepped at most twice what it took.
        noise = draws.noise_rows(min(max_new_chars - made, max(1, made)))
        tokens, probs, logits, states = stepper.sample(
            logits, state, noise, settings.temperature, settings.top_k, settings.top_p
        )
        for token_id, token_probs, state in zip(tokens.tolist(), probs, states):
            yield Step(vocab[token_id], token_id, token_probs, state)
        made += len(tokens)


def stream(
    model: CharRNN,
    prompt: str,
    max_new_chars: int,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int | None = None,
    engine: Engine | None = None,
) -> Iterator[str]:
    """Yield the continuation of ``prompt`` one character at a time (``engine``: as for :func:`sample_steps`)."""
    steps = sample_steps(model, prompt, max_new_chars, temperature, top_k, top_p, seed, engine)
    return (step.char for step in steps)


def generate(
    model: CharRNN,
    prompt: str,
    max_new_chars: int,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int | None = None,
    engine: Engine | None = None,
) -> str:
    """The continuation of ``prompt`` (without the prompt), ``max_new_chars`` characters long
    (``engine``: as for :func:`sample_steps`)."""
    return "".join(stream(model, prompt, max_new_chars, temperature, top_k, top_p, seed, engine))
