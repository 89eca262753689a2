"""The server's log stays small: a condition that repeats is logged once per interval, then with a count of the others."""

from __future__ import annotations

import logging

from web.server import OncePerInterval


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def record(message: str) -> logging.LogRecord:
    return logging.LogRecord("asyncio", logging.ERROR, __file__, 1, message, (), None)


def test_a_repeated_condition_passes_once_per_interval_and_then_says_how_many_were_held() -> None:
    clock = Clock()
    once = OncePerInterval(10, clock)
    accept = "socket.accept() out of system resource\nsocket: <fd=3>"
    passed = [once.filter(record(accept)) for _ in range(1000)]
    assert passed.count(True) == 1 and passed[0]
    assert once.filter(record("another condition"))  # each condition has its own interval
    clock.now += 10
    again = record(accept)
    assert once.filter(again) and again.getMessage() == accept + "\n(999 more like it in the last 10 s, not logged)"
    assert not once.filter(record(accept))
