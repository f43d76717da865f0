"""Sampling text from a CharRNN, one character at a time with the state carried.

The loop is the textbook one (nanoGPT's ``sample.py``, carried state as in word_language_model):
the prompt primes the state once, then each character is drawn from the distribution of the next
one (:func:`rnn_demo.generation.engine.distribution`), fed back in (one engine step), and so on.
The cost per character is flat however long the text grows.

:class:`Sampler` is one stream: its weights, settings, private random generator, constraint and
state. :func:`advance` draws the next character of several streams and steps them together, and
is the only place a character is made: :func:`sample_steps` calls it with one stream, the server's
worker (``rnn_demo.serving.worker``) with all of its streams. Since the step is batch invariant,
a seed gives the same text alone or beside others.

A say in the next character: ``allowed`` is a callable that gets the text generated so far (the
prompt excluded) and returns the characters allowed next (any iterable of characters), or None for
no restriction. The draw renormalises over the allowed characters after temperature, top-k and
top-p; when those left none of them, it draws among the allowed characters alone (with the same
temperature, top-k and top-p), so a constraint always holds. When no allowed character is in the
vocabulary, ValueError names the position.

Prompt policy: characters the vocabulary lacks are skipped (:func:`encode_prompt` reports them).
An empty prompt, or one with no known character, starts from a newline (or the vocabulary's first
character when it has no newline): "the start of a paragraph".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from rnn_demo.generation import engine
from rnn_demo.generation.engine import State, Weights
from rnn_demo.model.tokenizer import Encoding

if TYPE_CHECKING:
    from rnn_demo.model import CharRNN, Hidden

MAX_SEED = 2**63 - 1
Allowed = Callable[[str], Iterable[str] | None]


@dataclass(frozen=True)
class SamplingSettings:
    """How the next character is drawn from the model's distribution.

    temperature: 0 = greedy (always the most likely character); 1 = the model's own
        distribution; above 1 flatter, below 1 sharper.
    top_k: keep only the k most likely characters (0, or k at least the vocabulary: all).
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
    probs: np.ndarray  # (vocab_size,) float64: the distribution it was drawn from (settings and constraint applied)
    state: State  # the engine's state after feeding this character back in: (h, c), (L, 1, H) each

    @property
    def hidden(self) -> Hidden:
        """:attr:`state` as torch tensors, the form ``CharRNN.forward`` takes."""
        import torch

        h, c = self.state
        return (torch.from_numpy(h), torch.from_numpy(c)) if c is not None else torch.from_numpy(h)


def encode_prompt(model: CharRNN | Weights, prompt: str) -> Encoding:
    """The prompt's token ids (unknown characters skipped and listed in ``skipped``), for a model or
    its engine weights.

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


class Sampler:
    """One stream of generated text: the model's weights, the settings, a private random generator
    seeded from ``seed`` (from the OS when None; no global generator is touched), the constraint,
    and the logits and state after the prompt and the characters drawn so far.

    Making one primes the state with ``prompt_ids`` (one engine step a character)."""

    def __init__(
        self,
        weights: Weights,
        prompt_ids: list[int],
        settings: SamplingSettings,
        seed: int | None = None,
        allowed: Allowed | None = None,
    ):
        if not prompt_ids:
            raise ValueError("the prompt must have at least one token (see encode_prompt)")
        check_seed(seed)
        if allowed is not None and not callable(allowed):
            raise TypeError(f"allowed must be a callable (or None), got {type(allowed).__name__}")
        self.weights, self.tokenizer, self.settings, self.allowed = weights, weights.tokenizer, settings, allowed
        self.generator = np.random.default_rng(seed)
        self.text: list[str] = []  # the characters drawn so far
        self.state = engine.zero_state(weights)
        for token in prompt_ids:
            logits, self.state = engine.step(weights, np.array([token]), self.state)
        self.logits = logits[0]  # (V,)

    def next_distribution(self) -> np.ndarray:
        """The probabilities (V,) of the next character: the settings, then the constraint."""
        settings = self.settings
        probs = engine.distribution(self.logits, settings.temperature, settings.top_k, settings.top_p)
        if not np.isfinite(probs).all():
            raise ValueError("the model's probabilities are not finite numbers (its weights may be broken)")
        if self.allowed is None:
            return probs
        chosen = self.allowed("".join(self.text))
        if chosen is None:
            return probs
        ids = self.tokenizer.encode_known("".join(chosen)).ids
        if not ids:
            raise ValueError(f"none of the characters allowed at position {len(self.text)} is in the model's vocabulary")
        mask = np.zeros(len(probs), bool)
        mask[ids] = True
        kept = np.where(mask, probs, 0.0)
        if kept.sum() == 0:  # the settings left none of the allowed: draw among them alone
            logits = np.where(mask, self.logits, -np.inf)
            kept = engine.distribution(logits, settings.temperature, settings.top_k, settings.top_p)
        return kept / kept.sum()

    def choose(self) -> tuple[int, np.ndarray]:
        """The next character's id and the distribution it was drawn from (not yet fed back in)."""
        probs = self.next_distribution()
        return engine.draw(probs, self.generator), probs

    def advanced(self, token: int, logits: np.ndarray, state: State) -> None:
        """Record the drawn ``token`` and the logits (V,) and state after feeding it in."""
        self.text.append(self.tokenizer.vocab[token])
        self.logits, self.state = logits, state


def advance(samplers: list[Sampler]) -> list[tuple[int, np.ndarray] | Exception]:
    """The next character of each sampler (all on the same weights), drawn and fed in with one
    engine step for all of them. Returns, per sampler, (token id, distribution), or the exception
    its draw raised (a bad setting or constraint): that sampler is left as it was, the others go on.
    """
    results: list[tuple[int, np.ndarray] | Exception] = []
    for sampler in samplers:
        try:
            results.append(sampler.choose())
        except Exception as error:  # noqa: BLE001 - one stream's failure is its own
            results.append(error)
    drawn = [(sampler, result) for sampler, result in zip(samplers, results) if not isinstance(result, Exception)]
    if drawn:
        tokens = np.array([token for _, (token, _) in drawn])
        logits, state = engine.step(drawn[0][0].weights, tokens, engine.stack_states([s.state for s, _ in drawn]))
        for row, (sampler, (token, _)) in enumerate(drawn):
            sampler.advanced(token, logits[row], engine.state_row(state, row))
    return results


def sampler_for(
    weights: Weights,
    prompt: str,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int | None = None,
    allowed: Allowed | None = None,
) -> Sampler:
    """A :class:`Sampler` continuing ``prompt`` with a model's engine weights; bad arguments raise here."""
    settings = SamplingSettings(temperature, top_k, top_p)
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a str, got {type(prompt).__name__}")
    return Sampler(weights, encode_prompt(weights, prompt).ids, settings, seed, allowed)


def sample_steps(
    model: CharRNN,
    prompt: str,
    max_new_chars: int,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int | None = None,
    allowed: Allowed | None = None,
) -> Iterator[Step]:
    """Yield ``max_new_chars`` sampled characters as :class:`Step` records. Bad arguments raise at
    call time; a constraint that cannot be met raises ValueError when its position is reached."""
    check_length(max_new_chars)
    SamplingSettings(temperature, top_k, top_p)  # checked before the weights are taken
    sampler = sampler_for(Weights.from_model(model), prompt, temperature, top_k, top_p, seed, allowed)
    return _steps(sampler, max_new_chars)


def _steps(sampler: Sampler, max_new_chars: int) -> Iterator[Step]:
    for _ in range(max_new_chars):
        (result,) = advance([sampler])
        if isinstance(result, Exception):
            raise result
        token, probs = result
        yield Step(sampler.tokenizer.vocab[token], token, probs, sampler.state)


def stream(
    model: CharRNN,
    prompt: str,
    max_new_chars: int,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int | None = None,
    allowed: Allowed | None = None,
) -> Iterator[str]:
    """Yield the continuation of ``prompt`` one character at a time."""
    steps = sample_steps(model, prompt, max_new_chars, temperature, top_k, top_p, seed, allowed)
    return (step.char for step in steps)


def generate(
    model: CharRNN,
    prompt: str,
    max_new_chars: int,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int | None = None,
    allowed: Allowed | None = None,
) -> str:
    """The continuation of ``prompt`` (without the prompt), ``max_new_chars`` characters long."""
    return "".join(stream(model, prompt, max_new_chars, temperature, top_k, top_p, seed, allowed))
