"""Public path of sampling: ``from rnn_demo.sampling import generate, stream``
(:mod:`rnn_demo.generation.sampling`)."""

from rnn_demo.generation.sampling import (
    MAX_SEED,
    SamplingSettings,
    Step,
    encode_prompt,
    generate,
    sample_steps,
    stream,
)

__all__ = ["MAX_SEED", "SamplingSettings", "Step", "encode_prompt", "generate", "sample_steps", "stream"]
