"""Training in the page (rnn_demo.serving.training_jobs): the caps, a run in its own process, Stop,
crashes, the models kept by id; then /train and /generate_trained through the running app, and the
app's MCP tools."""

import math
import os
import signal
import time
import zipfile

import httpx
import pytest
from gradio_client.exceptions import AppError

from rnn_demo.model import CharRNN
from rnn_demo.serving import training_jobs
from rnn_demo.serving.requests import RequestError
from rnn_demo.serving.training_jobs import (
    Progress,
    TrainedModels,
    Trainer,
    TrainingFailed,
    TrainingLimits,
    read_text_file,
    validate_training_request,
)
from rnn_demo.training import run_folder

# A Chinese text of its own (the project grew from a Chinese introduction to RNNs): what the
# hidden state is, in a few sentences, repeated to more than the minimum length.
CHINESE = (
    "循环神经网络一次读一个字，并把读过的内容记在隐藏状态里。"
    "每读一个新字，它就用同一组权重把新字和旧的状态合成新的状态。"
    "所以它能记住前文，再根据前文猜下一个字会是什么。"
    "温度越低，它写出的句子越保守；温度越高，句子就越大胆。\n"
) * 12
LIMITS = TrainingLimits()


def request(text=None, **overrides):
    arguments = {"cell": "gru", "hidden_size": 32, "num_layers": 1, "seconds": 5}
    arguments.update(overrides)
    return validate_training_request(LIMITS, CHINESE if text is None else text, source="a test text", **arguments)


# ---- the caps and the validation ------------------------------------------------------------------


def test_the_limits_come_from_the_environment_and_a_bad_one_is_named():
    assert TrainingLimits.from_environment({}) == TrainingLimits()
    raised = TrainingLimits.from_environment({"RNN_DEMO_TRAIN_MAX_HIDDEN_SIZE": "512", "RNN_DEMO_TRAIN_MAX_SECONDS": "600"})
    assert (raised.max_hidden_size, raised.max_seconds, raised.max_models) == (512, 600.0, TrainingLimits().max_models)
    with pytest.raises(ValueError, match=r"\$RNN_DEMO_TRAIN_MAX_MODELS must be an integer, got 'many'"):
        TrainingLimits.from_environment({"RNN_DEMO_TRAIN_MAX_MODELS": "many"})
    with pytest.raises(ValueError, match=r"\$RNN_DEMO_TRAIN_MODEL_MINUTES must be positive"):
        TrainingLimits.from_environment({"RNN_DEMO_TRAIN_MODEL_MINUTES": "-1"})


def test_the_defaults_are_the_documented_caps():
    limits = TrainingLimits()
    assert (limits.max_hidden_size, limits.max_seconds, limits.max_text_bytes) == (256, 120.0, 5_000_000)
    assert limits.min_chars == 1_000 and limits.max_vocab >= 5_000 and limits.concurrency == 1
    assert (limits.max_waiting, limits.models_per_client, limits.max_models, limits.model_minutes) == (4, 3, 24, 60.0)


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        ("", {}, "The text is empty"),
        ("   \n ", {}, "The text is empty"),
        ("x" * 999, {}, "The text has 999 characters; at least 1,000 are needed"),
        ("".join(chr(0x4E00 + i) for i in range(6_001)), {}, "6,001 distinct characters; at most 6,000"),
        ("a\ud800" * 600, {}, "surrogate"),
        (None, {"cell": "transformer"}, "Unknown cell 'transformer'; choose one of rnn, gru, lstm"),
        (None, {"hidden_size": 257}, "hidden_size must be between 1 and 256, got 257"),
        (None, {"hidden_size": 0}, "hidden_size must be between 1 and 256, got 0"),
        (None, {"hidden_size": 12.5}, "hidden_size must be a whole number, got 12.5"),
        (None, {"num_layers": 3}, "num_layers must be between 1 and 2, got 3"),
        (None, {"seconds": 121}, "seconds must be between 5 and 120, got 121"),
        (None, {"seconds": float("nan")}, "seconds must be a number, got nan"),
        (None, {"seconds": "60"}, "seconds must be a number, got '60'"),
    ],
)
def test_a_bad_training_request_gets_one_sentence(text, overrides, message):
    with pytest.raises(RequestError, match=message.replace("(", r"\(")):
        request(text, **overrides)


def test_a_text_over_the_size_cap_is_refused():
    small = TrainingLimits(max_text_mb=0.01)
    with pytest.raises(RequestError, match=r"The text is 0.0 MB; at most 0.01 MB"):
        validate_training_request(small, "ab" * 6_000, "lstm", 32, 1, 5)


def test_chinese_text_with_thousands_of_distinct_characters_is_accepted():
    text = "".join(chr(0x4E00 + i) for i in range(5_000)) * 2
    assert request(text).text == text


def test_uploads_must_be_utf8_text_under_the_cap(tmp_path):
    good = tmp_path / "good.txt"
    good.write_bytes("\ufeff".encode() + CHINESE.encode())
    assert read_text_file(good, LIMITS) == CHINESE  # the byte-order mark is dropped
    binary = tmp_path / "picture.txt"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(RequestError, match="picture.txt is not a text file"):
        read_text_file(binary, LIMITS)
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("café olé".encode("latin-1"))
    with pytest.raises(RequestError, match=r"latin1.txt is not UTF-8 text \(byte 3 cannot be decoded\)"):
        read_text_file(latin, LIMITS)
    with pytest.raises(RequestError, match=r"good.txt is 0.0 MB; at most 0.0001 MB"):
        read_text_file(good, TrainingLimits(max_text_mb=0.0001))
    with pytest.raises(RequestError, match="Could not read the uploaded file gone.txt"):
        read_text_file(tmp_path / "gone.txt", LIMITS)


def test_the_names_of_the_trainers_files_are_the_trainers():
    assert training_jobs.LOG_NAME == run_folder.LOG_NAME
    assert training_jobs.STATE_NAME == run_folder.STATE_NAME
    assert training_jobs.SHIPPED_TEXT.is_file() and len(training_jobs.shipped_text()) == 1_115_394


# ---- the models kept ------------------------------------------------------------------------------


def model_folder(root, trained_run, name):
    import shutil

    folder = root / name / "my-lstm-h64"
    shutil.copytree(trained_run[0], folder, ignore=shutil.ignore_patterns("training_state*"))
    return folder


def test_trained_models_are_kept_by_id_a_visitors_least_recently_used_out(tmp_path, trained_run):
    models = TrainedModels(TrainingLimits(models_per_client=2))
    first = models.add(model_folder(tmp_path, trained_run, "a"), "a", owner="10.0.0.1")
    second = models.add(model_folder(tmp_path, trained_run, "b"), "b", owner="10.0.0.1")
    others = models.add(model_folder(tmp_path, trained_run, "o"), "o", owner="10.0.0.2")
    assert first.model_id != second.model_id and len(first.model_id) >= 16
    models.get(first.model_id)  # first is now the most recently used
    third = models.add(model_folder(tmp_path, trained_run, "c"), "c", owner="10.0.0.1")
    assert len(models) == 3
    with pytest.raises(RequestError, match="No trained model has the id .*, 2 per visitor"):
        models.get(second.model_id)
    assert not (tmp_path / "b").exists()  # an evicted model's folder is deleted
    assert models.get(first.model_id).info.name == "my-lstm-h64"
    assert models.get(third.model_id).zoo.load("lstm", 64).hidden_size == 64
    assert models.get(others.model_id)  # another visitor's model stays
    with pytest.raises(RequestError, match="model_id must be the id a training returned"):
        models.get(None)


def test_a_visitor_never_evicts_anothers_model_the_server_waits_for_one_to_expire(tmp_path, trained_run):
    now = [0.0]
    models = TrainedModels(TrainingLimits(max_models=2, model_minutes=10), clock=lambda: now[0])
    kept = [models.add(model_folder(tmp_path, trained_run, name), name, owner=name) for name in ("a", "b")]
    now[0] = 60.0
    assert models.seconds_until_room("c") == pytest.approx(9 * 60)  # full of others' models: wait for one
    assert models.seconds_until_room("a") == 0.0  # a has one of its own to give up
    replaced = models.add(model_folder(tmp_path, trained_run, "a2"), "a2", owner="a")
    assert len(models) == 2 and models.get(replaced.model_id) and models.get(kept[1].model_id)
    with pytest.raises(RequestError):
        models.get(kept[0].model_id)  # a's older model made the room, b's is untouched


def test_a_trained_model_expires_after_its_minutes_unused(tmp_path, trained_run):
    now = [0.0]
    models = TrainedModels(TrainingLimits(model_minutes=10), clock=lambda: now[0])
    kept = models.add(model_folder(tmp_path, trained_run, "a"), "a")
    now[0] = 9 * 60
    models.get(kept.model_id)  # a use restarts its time
    now[0] = 18 * 60
    assert models.get(kept.model_id).model_id == kept.model_id
    now[0] = 28.5 * 60
    with pytest.raises(RequestError, match="expired"):
        models.get(kept.model_id)
    assert not (tmp_path / "a").exists()


def test_a_zip_that_fails_leaves_no_file_and_the_next_one_is_whole(tmp_path, trained_run, monkeypatch):
    import errno

    from rnn_demo.files import WriteError

    entry = TrainedModels(LIMITS).add(model_folder(tmp_path, trained_run, "a"), "a")
    real_write = zipfile.ZipFile.write

    def disk_full_after_the_first_file(bundle, *args, **kwargs):
        if bundle.namelist():
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(bundle, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "write", disk_full_after_the_first_file)
    with pytest.raises(WriteError, match=r"Could not write .*my-lstm-h64.zip: No space left on device \(the disk is full\)"):
        training_jobs.zip_model(entry)
    assert sorted(path.name for path in (tmp_path / "a").iterdir()) == ["my-lstm-h64"]  # no .tmp, no zip
    monkeypatch.undo()
    with zipfile.ZipFile(training_jobs.zip_model(entry)) as bundle:
        assert "my-lstm-h64/model.safetensors" in bundle.namelist() and bundle.testzip() is None


# ---- runs -----------------------------------------------------------------------------------------


@pytest.fixture
def trainer(tmp_path):
    trainer = Trainer(root=tmp_path / "trained")
    trainer.root.mkdir()
    yield trainer
    trainer.models.clear()


@pytest.mark.slow
def test_a_run_streams_its_progress_and_leaves_a_model_that_loads_everywhere(trainer, tmp_path):
    updates = list(trainer.train(request()))
    assert all(isinstance(update, Progress) for update in updates)
    steps = [update.step for update in updates]
    assert steps == sorted(steps) and steps[-1] > 0
    last = updates[-1]
    assert last.done and not last.stopped and last.model_id and sum(1 for u in updates if u.done) == 1
    assert last.train_loss is not None and last.val_loss is not None and last.best_val_loss <= last.val_loss
    assert [split for _, split, _ in last.curve].count("validation") >= 1
    assert last.to_dict()["model_id"] == last.model_id and set(last.to_dict()) >= {
        "step", "elapsed", "train_loss", "val_loss", "chars_per_second", "done", "model_id"
    }  # fmt: skip

    entry = trainer.models.get(last.model_id)
    assert entry.info.name == "my-gru-h32" and entry.info.val_bpc is not None
    assert not (entry.info.path / "training_state.safetensors").exists()
    model = entry.zoo.load("gru", 32)
    assert set(model.vocab) == set(CHINESE)  # the vocabulary is the text's own
    archive = training_jobs.zip_model(entry)
    with zipfile.ZipFile(archive) as bundle:
        assert {"my-gru-h32/config.json", "my-gru-h32/model.safetensors", "my-gru-h32/metrics.json"} <= set(bundle.namelist())
        bundle.extractall(tmp_path / "unzipped")
    unzipped = CharRNN.from_pretrained(tmp_path / "unzipped" / "my-gru-h32")
    assert unzipped.vocab == model.vocab
    assert "--model-dir my-gru-h32" in training_jobs.publish_command(entry)


@pytest.mark.slow
def test_a_run_ends_within_its_seconds_plus_10_evaluations_included_whatever_the_text(trainer):
    import random

    # The largest text allowed (5 MB) with 5,000 distinct characters, and the largest model: under a
    # budget of training steps only, its evaluations alone took minutes.
    characters = [chr(0x4E00 + i) for i in range(5_000)]
    text = "".join(random.Random(0).choices(characters, k=LIMITS.max_text_bytes // 3))
    job = validate_training_request(LIMITS, text, "lstm", LIMITS.max_hidden_size, 2, 5)
    started = time.monotonic()
    updates = []
    for update in trainer.train(job):
        updates.append(update)
        if len(updates) == 2:
            pid = _training_pid(trainer)
            assert _niceness(pid) == min(_niceness(os.getpid()) + training_jobs.TRAINING_NICENESS, 19)
    took = time.monotonic() - started
    assert updates[-1].done and updates[-1].model_id and updates[-1].best_val_loss is not None
    assert took <= job.seconds + 10
    # The time left is wall time: it runs down while the model is evaluated too, and reaches 0 at the budget.
    for update in updates:
        assert update.seconds_left == pytest.approx(max(job.seconds - update.elapsed, 0), abs=0.1)
    assert updates[-1].elapsed == pytest.approx(took, abs=1)


@pytest.mark.slow
def test_stop_ends_the_run_at_once_and_keeps_the_best_model_so_far(trainer):
    evaluated = []

    def after_the_first_evaluation():
        return bool(evaluated)

    updates = trainer.train(request(seconds=60), should_stop=after_the_first_evaluation)
    for update in updates:
        if update.val_loss is not None:
            evaluated.append(update)
            run_started = time.monotonic()
    assert update.done and update.stopped and update.model_id
    assert time.monotonic() - run_started < 3  # not the 60 s asked for
    entry = trainer.models.get(update.model_id)
    assert entry.info.val_bpc is not None  # described from the metrics a stopped run writes
    assert entry.zoo.load("gru", 32).vocab


def test_stop_before_the_first_evaluation_keeps_nothing(trainer):
    updates = trainer.train(request(), should_stop=lambda: True)
    with pytest.raises(TrainingFailed, match="before the first evaluation .*: no model was kept"):
        list(updates)
    assert list(trainer.root.iterdir()) == []  # the run's folder is gone


def test_a_second_visitor_waits_in_line_and_stop_while_waiting_leaves_it(trainer):
    from rnn_demo.serving.clients import Client
    from rnn_demo.serving.training_line import ENDING_SECONDS

    first = trainer.train(request(seconds=5), client=Client("10.0.0.1"))
    assert next(first).waiting == 0  # the line was empty: it runs
    stopping = []
    second = trainer.train(request(seconds=5), should_stop=lambda: bool(stopping), client=Client("10.0.0.2"))
    waiting = next(second)
    assert waiting.waiting == 1 and 0 < waiting.starts_in <= 5 + ENDING_SECONDS and waiting.to_dict()["waiting"] == 1
    with pytest.raises(RequestError, match="You already have a training running or waiting"):
        next(trainer.train(request(), client=Client("10.0.0.2", "another session")))
    stopping.append(True)
    with pytest.raises(TrainingFailed, match="Stopped while waiting for its turn: nothing was trained"):
        list(second)
    assert len(trainer.line) == 1  # the first still runs
    first.close()
    assert len(trainer.line) == 0 and list(trainer.root.iterdir()) == []


def stop_with_a_saved_model(trainer, trained_run, saved_loss: float, logged_loss: float):
    """A should_stop that first puts a run's files as the trainer leaves them when it is killed just after
    saving a new best model (``saved_loss`` at step 200, in the weights' header) and before logging it
    (the log's best is still ``logged_loss``, at step 100); then stops the run."""
    import json
    import shutil

    def stop() -> bool:
        [run] = trainer._runs
        run.model_folder.mkdir()
        for name in ("config.json", "README.md"):
            shutil.copy2(trained_run[0] / name, run.model_folder / name)
        model = CharRNN.from_pretrained(trained_run[0])
        model.save_weights(run.model_folder / "model.safetensors", metadata={"val_loss": repr(saved_loss), "step": "200"})
        records = [{"step": 100, "train_loss": 2.5, "train_seconds": 1.0}, {"step": 100, "val_loss": logged_loss}]
        (run.model_folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        return True

    return stop


def test_a_stop_just_after_a_new_best_model_was_saved_records_that_models_score(trainer, trained_run):
    request_64 = request(cell="lstm", hidden_size=64)  # the saved model's shape (trained_run's)
    *_, last = trainer.train(request_64, should_stop=stop_with_a_saved_model(trainer, trained_run, 1.5, 2.0))
    assert last.done and last.stopped and last.best_val_loss == 1.5  # the saved model's, not the log's 2.0
    entry = trainer.models.get(last.model_id)
    assert entry.info.val_bpc == round(1.5 / math.log(2), 5)
    import json

    metrics = json.loads((entry.info.path / "metrics.json").read_text())
    assert (metrics["val_loss"], metrics["best_step"], metrics["steps"]) == (1.5, 200, 100)


def test_a_stopped_model_whose_metrics_cannot_be_written_is_kept_without_a_score(trainer, trained_run, monkeypatch):
    import errno

    from rnn_demo.files import atomic_path

    def disk_full(path, text):
        with atomic_path(path) as temporary:
            temporary.write_text(text[: len(text) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(training_jobs, "atomic_write_text", disk_full)
    request_64 = request(cell="lstm", hidden_size=64)
    *_, last = trainer.train(request_64, should_stop=stop_with_a_saved_model(trainer, trained_run, 1.5, 2.0))
    assert last.done and last.stopped and last.model_id  # not deleted: the user's model stays theirs
    entry = trainer.models.get(last.model_id)
    assert entry.info.val_bpc is None and entry.zoo.load("lstm", 64).hidden_size == 64
    assert sorted(path.name for path in entry.info.path.iterdir()) == ["README.md", "config.json", "metrics.jsonl", "model.safetensors"]


def test_a_run_that_cannot_start_says_why_and_leaves_no_folder(trainer, monkeypatch):
    import errno

    def no_process_to_spare(*args, **kwargs):
        raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN))

    monkeypatch.setattr(training_jobs.subprocesses, "start", no_process_to_spare)
    with pytest.raises(TrainingFailed, match=r"^The training could not start: Resource temporarily unavailable\.$"):
        list(trainer.train(request()))
    assert list(trainer.root.iterdir()) == [] and not trainer._runs


def test_closing_the_updates_ends_the_process_and_keeps_nothing(trainer):
    updates = trainer.train(request(seconds=60))
    next(updates)
    [folder] = trainer.root.iterdir()
    log = folder / "train.log"
    pid = _training_pid(trainer)
    updates.close()
    assert not folder.exists() and not log.exists()
    assert not _alive(pid)


def test_a_training_process_that_dies_fails_its_run_only(trainer):
    updates = trainer.train(request(seconds=60))
    next(updates)
    os.kill(_training_pid(trainer), signal.SIGKILL)
    with pytest.raises(TrainingFailed, match="The training failed: the training process was ended by signal SIGKILL"):
        list(updates)
    assert list(trainer.root.iterdir()) == [] and len(trainer.models) == 0


def _training_pid(trainer) -> int:
    import subprocess

    listed = subprocess.run(["pgrep", "-f", f"rnn_demo.cli.train.*{trainer.root}"], capture_output=True, text=True, check=True)
    [pid] = listed.stdout.split()
    return int(pid)


def _niceness(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[16])  # the stat file's field 19


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


# ---- through the running app ----------------------------------------------------------------------


@pytest.mark.slow
def test_train_then_generate_trained_through_the_api(client):
    job = client.submit(CHINESE, "lstm", 32, 5, api_name="/train")
    updates = list(job)
    assert updates[-1]["done"] and updates[-1]["model_id"]
    assert [u["done"] for u in updates].count(True) == 1
    assert updates[0]["val_loss"] is None  # null until the first evaluation
    model_id = updates[-1]["model_id"]
    texts = [
        client.predict(model_id, "循环", 0.8, 30, 0, 1.0, 11, api_name="/generate_trained") for _ in range(2)
    ]
    assert texts[0] == texts[1] and texts[0].startswith("循环") and len(texts[0]) == 32
    assert set(texts[0]) <= set(CHINESE)  # written in the text's own characters
    with pytest.raises(AppError, match="No trained model has the id 'no-such-model'"):
        client.predict("no-such-model", "x", api_name="/generate_trained")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("", "lstm", 32, 5), "The text is empty"),
        (("short", "lstm", 32, 5), "The text has 5 characters; at least 1,000"),
        ((CHINESE, "cnn", 32, 5), "Unknown cell 'cnn'"),
        ((CHINESE, "lstm", 1024, 5), "hidden_size must be between 1 and 256, got 1024"),
        ((CHINESE, "lstm", 32, 3600), "seconds must be between 5 and 120, got 3600"),
    ],
)
def test_a_bad_train_call_gets_one_sentence(client, arguments, message):
    with pytest.raises(AppError, match=message):
        client.predict(*arguments, api_name="/train")


@pytest.mark.slow
def test_one_training_at_a_time_the_second_visitor_sees_its_place_and_a_flood_is_refused_at_once(app_url, client):
    from gradio_client import Client

    def visitor(address: str) -> Client:  # another visitor, as the Space's proxy names it
        return Client(app_url, verbose=False, analytics_enabled=False, headers={"X-Forwarded-For": address})

    first = client.submit(CHINESE, "rnn", 16, 5, api_name="/train")
    assert _wait(lambda: len(first.outputs()) > 0, 30)  # it has its place: running
    second = visitor("203.0.113.2").submit(CHINESE, "rnn", 16, 5, api_name="/train")
    assert _wait(lambda: len(second.outputs()) > 0, 30)
    assert second.outputs()[0]["waiting"] == 1 and second.outputs()[0]["starts_in"] > 0
    # A flood from the visitor whose training runs: every request refused at once, and another
    # visitor's generation meanwhile answers.
    started = time.monotonic()
    flood = [client.submit(CHINESE, "rnn", 16, 5, api_name="/train") for _ in range(40)]
    text = visitor("203.0.113.3").predict("ROMEO:", "lstm", 64, 0.8, 20, 0, 1.0, 1, api_name="/generate")
    assert len(text) == len("ROMEO:") + 20
    for job in flood:  # refused by the line, or, beyond 8 of the visitor's requests at once, at the door
        with pytest.raises((AppError, httpx.HTTPStatusError), match="You already have a training running or waiting|429"):
            job.result()
    assert time.monotonic() - started < 5 + 10  # answered before the running training ended
    results = [first.result(), second.result()]  # the last value of each stream
    assert all(result["done"] for result in results) and results[0]["model_id"] != results[1]["model_id"]
    assert [update["waiting"] for update in second.outputs()][-1] == 0  # it ran once the first was done


def _wait(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_the_apps_public_endpoints_are_mcp_tools(app_models, pick_free_port):
    import asyncio

    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    import app
    from rnn_demo.serving.zoo import ModelZoo

    demo = app.build_demo(ModelZoo(app_models))
    _, url, _ = demo.launch(
        **app.launch_options(
            server_name="127.0.0.1", server_port=pick_free_port(), prevent_thread_lock=True, quiet=True, mcp_server=True
        )
    )

    async def session():
        async with streamable_http_client(f"{url}gradio_api/mcp/") as (read, write, _):  # noqa: SIM117
            async with ClientSession(read, write) as mcp:  # (it needs the streams the first one opens)
                await mcp.initialize()
                tools = {tool.name: tool for tool in (await mcp.list_tools()).tools}
                written = await mcp.call_tool(
                    "generate", {"prompt": "ROMEO:", "cell": "lstm", "hidden_size": 64, "max_new_chars": 30, "seed": 5}
                )
                refused = await mcp.call_tool("generate", {"prompt": "ROMEO:", "cell": "lstm", "hidden_size": 7})
                return tools, written, refused

    try:
        assert demo.mcp_server
        tools, written, refused = asyncio.run(session())
    finally:
        demo.close()
    assert set(tools) == {"generate", "models", "explain", "score", "neurons", "compare", "train", "generate_trained", "poem",
                          "check_poem"}
    generate = tools["generate"]
    assert generate.description.startswith("Write Shakespeare-like text")
    assert "the text to continue" in generate.inputSchema["properties"]["prompt"]["description"]
    for tool in tools.values():  # every argument is described for the model that calls the tool
        assert all(prop.get("description") for prop in tool.inputSchema["properties"].values()), tool.name
    assert not written.isError and written.content[0].text.startswith("ROMEO:")
    assert len(written.content[0].text) == len("ROMEO:") + 30
    assert refused.isError and "No lstm model with hidden size 7" in refused.content[0].text


def test_a_sessions_own_model_is_what_your_model_means_for_it_alone(tmp_path, trained_run, app_models):
    from rnn_demo.serving.zoo import ModelZoo

    trainer = Trainer(root=tmp_path)
    shared = ModelZoo(app_models)
    assert trainer.resolve(shared, "lstm", 64, "session-a") == (shared, "lstm", 64)  # the shared zoo's
    with pytest.raises(RequestError, match="You have no model of your own yet: train one in the Train tab first"):
        trainer.resolve(shared, training_jobs.YOUR_MODEL, None, "session-a")
    entry = trainer.models.add(model_folder(tmp_path, trained_run, "a"), "a")
    trainer.remember("session-a", entry.model_id)
    zoo, cell, hidden_size = trainer.resolve(shared, training_jobs.YOUR_MODEL, None, "session-a")
    assert zoo is entry.zoo and (cell, hidden_size) == ("lstm", 64)
    assert trainer.session_model("session-a") is entry and trainer.session_model("session-b") is None
    with pytest.raises(RequestError, match="no model of your own"):  # another session does not see it
        trainer.resolve(shared, training_jobs.YOUR_MODEL, None, "session-b")
    trainer.models.clear()
    assert trainer.session_model("session-a") is None
    with pytest.raises(RequestError, match="has expired"):
        trainer.resolve(shared, training_jobs.YOUR_MODEL, None, "session-a")


def test_the_pages_text_sources(tmp_path):
    from rnn_demo.ui.train_tab import training_text

    trainer = Trainer(root=tmp_path)
    text, name = training_text(trainer, "shipped", None, None)
    assert len(text) == 1_115_394 and name == "tiny shakespeare"
    assert training_text(trainer, "paste", CHINESE, None) == (CHINESE, "pasted text")
    assert training_text(trainer, "paste", None, None) == ("", "pasted text")  # then refused as empty
    upload = tmp_path / "mine.txt"
    upload.write_text(CHINESE, encoding="utf-8")
    assert training_text(trainer, "upload", None, str(upload)) == (CHINESE, "mine.txt")
    with pytest.raises(RequestError, match="Choose a .txt file to upload first"):
        training_text(trainer, "upload", None, None)
    with pytest.raises(RequestError, match="Unknown text source 'web'"):
        training_text(trainer, "web", None, None)


def test_the_loss_chart_has_the_same_column_types_with_and_without_points():
    import gradio as gr

    from rnn_demo.ui.train_tab import loss_frame

    chart = gr.LinePlot(x="step", y="loss", color="split")
    empty = chart.postprocess(loss_frame(Progress()))
    drawn = chart.postprocess(loss_frame(Progress(curve=[(10, "train", 4.1), (100, "validation", 3.2)])))
    # "split" named, not numbers: an empty numeric colour scale shows a "-Infinity" legend entry.
    assert empty.datatypes == drawn.datatypes == {"step": "quantitative", "split": "nominal", "loss": "quantitative"}
    assert empty.data == [] and drawn.data == [[10, "train", 4.1], [100, "validation", 3.2]]
