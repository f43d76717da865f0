"""Property-based checks (hypothesis): for any prompt and any parameters in range, the sampling
API and the /generate handler return exactly the requested length, and a seed reproduces it."""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnn_demo.generation.sampling import generate, stream
from rnn_demo.serving import requests, streaming
from rnn_demo.serving.zoo import ModelZoo

# Any Unicode text: control characters, lone surrogates, emoji, Chinese, right-to-left scripts.
prompts = st.text(max_size=40)
temperatures = st.floats(min_value=0.0, max_value=requests.MAX_TEMPERATURE, allow_nan=False)
top_ks = st.integers(min_value=0, max_value=80)
top_ps = st.floats(min_value=1e-6, max_value=1.0, allow_nan=False)
seeds = st.integers(min_value=0, max_value=2**63 - 1)
lengths = st.integers(min_value=0, max_value=40)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(prompt=prompts, length=lengths, temperature=temperatures, top_k=top_ks, top_p=top_ps, seed=seeds)
def test_generate_any_prompt_exact_length_and_reproducible(trained_model, prompt, length, temperature, top_k, top_p, seed):
    text = generate(trained_model, prompt, length, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
    assert isinstance(text, str) and len(text) == length
    assert set(text) <= set(trained_model.vocab)
    again = "".join(stream(trained_model, prompt, length, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed))
    assert again == text


@SETTINGS
@given(
    temperature=st.one_of(st.floats(max_value=-1e-9), st.just(math.nan), st.just(math.inf), st.just(-math.inf)),
    top_p=st.one_of(st.floats(max_value=0.0), st.floats(min_value=1.0000001), st.just(math.nan)),
)
def test_out_of_range_parameters_are_clear_errors(trained_model, temperature, top_p):
    with pytest.raises(ValueError, match="temperature"):
        generate(trained_model, "a", 3, temperature=temperature)
    with pytest.raises(ValueError, match="top_p"):
        generate(trained_model, "a", 3, top_p=top_p)


@pytest.fixture(scope="module")
def zoo(app_models):
    return ModelZoo(app_models)


@SETTINGS
@given(
    prompt=st.text(max_size=60),
    length=st.integers(min_value=1, max_value=30),
    temperature=temperatures,
    top_k=top_ks,
    top_p=top_ps,
    seed=seeds,
    hidden_size=st.sampled_from([64, 256]),
)
def test_generate_handler_any_prompt_exact_length_and_reproducible(
    zoo, worker, prompt, length, temperature, top_k, top_p, seed, hidden_size
):
    arguments = dict(prompt=prompt, cell="lstm", hidden_size=hidden_size, temperature=temperature,
                     max_new_chars=length, top_k=top_k, top_p=top_p, seed=seed)
    text, status = list(streaming.generate_stream(zoo, **arguments, worker=worker))[-1]
    assert status.done and text.startswith(prompt) and len(text) == len(prompt) + length
    assert list(streaming.generate_stream(zoo, **arguments, worker=worker))[-1][0] == text


@SETTINGS
@given(
    bad=st.one_of(
        st.fixed_dictionaries({"temperature": st.one_of(st.floats(min_value=2.0000001), st.floats(max_value=-1e-9), st.just(math.nan))}),
        st.fixed_dictionaries({"max_new_chars": st.one_of(st.integers(max_value=0), st.integers(min_value=requests.MAX_NEW_CHARS + 1))}),
        st.fixed_dictionaries({"prompt": st.text(min_size=requests.MAX_PROMPT_CHARS + 1, max_size=requests.MAX_PROMPT_CHARS + 5)}),
        st.fixed_dictionaries({"seed": st.one_of(st.integers(max_value=-2), st.integers(min_value=2**63))}),
        st.fixed_dictionaries({"hidden_size": st.integers().filter(lambda size: size not in (64, 256))}),
        st.fixed_dictionaries({"cell": st.text(max_size=8).filter(lambda cell: cell not in ("lstm", "rnn"))}),
    )
)
def test_generate_handler_refuses_out_of_range_input_with_a_request_error(zoo, worker, bad):
    arguments = dict(prompt="ROMEO:", cell="lstm", hidden_size=64, temperature=0.8, max_new_chars=5, top_k=0,
                     top_p=1.0, seed=1)
    with pytest.raises(requests.RequestError):
        list(streaming.generate_stream(zoo, **{**arguments, **bad}, worker=worker))
