"""The line of trainings (rnn_demo.serving.training_line): who runs, who waits, who is refused at once."""

import threading
import types

import pytest

from rnn_demo.serving.clients import LOCAL, Client
from rnn_demo.serving.requests import RequestError
from rnn_demo.serving.training_line import ENDING_SECONDS, TrainingLine


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def visitor(n: int) -> Client:
    return Client(f"10.0.0.{n}", f"session-{n}")


def test_the_first_runs_at_once_the_next_wait_in_order_and_leaving_starts_the_next():
    line = TrainingLine(running=1, waiting=2, clock=Clock())
    first, second, third = (line.join(visitor(n), 30) for n in (1, 2, 3))
    assert [line.position(p) for p in (first, second, third)] == [0, 1, 2]
    line.leave(first)
    assert [line.position(p) for p in (second, third)] == [0, 1]
    line.leave(third)  # a waiting one leaves (Stop while waiting): the others keep their places
    assert line.position(second) == 0 and len(line) == 1


def test_a_visitor_holds_one_place_by_address_or_by_session():
    line = TrainingLine(running=1, waiting=4, clock=Clock())
    line.join(Client("10.0.0.1", "a"), 30)
    for same in (Client("10.0.0.1", "b"), Client("10.0.0.9", "a")):
        with pytest.raises(RequestError, match="You already have a training running or waiting"):
            line.join(same, 30)
    line.join(Client("10.0.0.2", "b"), 30)  # another address and session: a place of its own


def test_a_full_line_refuses_at_once_and_says_when_to_try_again():
    clock = Clock()
    line = TrainingLine(running=1, waiting=2, clock=clock)
    running = line.join(visitor(1), 60)
    line.join(visitor(2), 30)
    line.join(visitor(3), 30)
    clock.now += 20
    with pytest.raises(RequestError) as refused:
        line.join(visitor(4), 30)
    assert str(refused.value) == (
        f"The server is busy: 1 running and 2 waiting, the most it takes. Try again in about {40 + ENDING_SECONDS:.0f} s."
    )
    line.leave(running)
    line.join(visitor(4), 30)  # a place freed: taken


def test_the_wait_is_estimated_from_the_budgets_ahead_with_several_running():
    clock = Clock()
    line = TrainingLine(running=2, waiting=3, clock=clock)
    line.join(visitor(1), 60)
    line.join(visitor(2), 20)
    third, fourth = line.join(visitor(3), 50), line.join(visitor(4), 10)
    # the slots free at 20 + E and 60 + E: the third takes the first, the fourth the second
    assert line.starts_in(third) == pytest.approx(20 + ENDING_SECONDS)
    assert line.starts_in(fourth) == pytest.approx(60 + ENDING_SECONDS)
    clock.now += 100  # past every budget: a run that overstays is estimated to end now
    assert line.starts_in(third) == line.starts_in(fourth) == 0.0


def test_wait_turn_wakes_when_the_place_starts():
    line = TrainingLine(running=1, waiting=1)
    first, second = line.join(visitor(1), 5), line.join(visitor(2), 5)
    threading.Timer(0.05, line.leave, args=[first]).start()
    assert line.wait_turn(second, timeout=5) == 0


def test_the_client_of_a_request_is_the_proxys_first_forwarded_address_and_the_session():
    def request(headers, host="127.0.0.1", session="s1"):
        return types.SimpleNamespace(headers=headers, client=types.SimpleNamespace(host=host), session_hash=session)

    assert Client.of(request({})) == Client("127.0.0.1", "s1")
    assert Client.of(request({"x-forwarded-for": "203.0.113.7, 10.0.0.1"})) == Client("203.0.113.7", "s1")
    assert Client.of(request({}, session=None)) == Client("127.0.0.1", None)
    assert Client.of(None) == LOCAL
