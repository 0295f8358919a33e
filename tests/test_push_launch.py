"""The API's immediate push launcher hands each outbox row to one run: a burst of pushes does not become a queue of
runs that claim nothing (each would hold the connection's push slot and a process start)."""

from __future__ import annotations

import pytest

from vrtx_pipelines.push import launch as push_launch
from vrtx_pipelines.push.launch import PushLauncher


def test_rows_already_handed_to_a_run_are_not_launched_again_until_the_relaunch_delay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    launcher = PushLauncher(lambda: None, "http://127.0.0.1:9")  # type: ignore[arg-type,return-value] -- unused here
    clock = [1000.0]
    monkeypatch.setattr(push_launch.time, "monotonic", lambda: clock[0])
    try:
        assert launcher._unlaunched((1, 2, 3)) is True
        assert launcher._unlaunched((1, 2, 3)) is False
        assert launcher._unlaunched((2, 3, 4)) is True  # row 4 is new: the batch goes to a run
        clock[0] += push_launch.RELAUNCH_AFTER_S + 1
        assert launcher._unlaunched((1, 2, 3)) is True  # a run that died long ago: launched again
    finally:
        launcher.close()
