"""Claiming and failing trials: exactly one of the workers that try at the same instant wins."""

from __future__ import annotations

import threading

import pytest

optuna = pytest.importorskip("optuna")
from optuna.exceptions import UpdateFinishedTrialError  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from nas_prune.search._study import _rdb_storage  # noqa: E402


def _running_trial(url: str) -> tuple[object, int]:
    storage = _rdb_storage(url, heartbeat_interval=1, grace_period=2)
    study = optuna.create_study(storage=storage, study_name="s")
    trial = study.ask()
    return storage, trial._trial_id


def _all_at_once(url: str, call, n: int = 8) -> list:  # noqa: ANN001
    """``call(storage)`` from ``n`` threads, each with its own storage (own connections), released together."""
    workers = [_rdb_storage(url, heartbeat_interval=1, grace_period=2) for _ in range(n)]
    barrier = threading.Barrier(n)
    results: list = []

    def run(storage) -> None:  # noqa: ANN001
        barrier.wait()
        results.append(call(storage))

    threads = [threading.Thread(target=run, args=(s,)) for s in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_second_fail_of_one_trial_is_refused(tmp_path):
    storage, trial_id = _running_trial(f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert storage.set_trial_state_values(trial_id, TrialState.FAIL) is True
    assert storage.get_trial(trial_id).state == TrialState.FAIL
    assert storage.get_trial(trial_id).datetime_complete is not None
    with pytest.raises(UpdateFinishedTrialError):
        storage.set_trial_state_values(trial_id, TrialState.FAIL)


def test_concurrent_fails_one_winner(tmp_path):
    """Eight workers (own storages, own connections) fail one trial together: one succeeds."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    _, trial_id = _running_trial(url)

    def fail(storage) -> bool:  # noqa: ANN001
        try:
            return bool(storage.set_trial_state_values(trial_id, TrialState.FAIL))
        except UpdateFinishedTrialError:
            return False

    assert sorted(_all_at_once(url, fail)) == [False] * 7 + [True]


def test_completing_a_trial_still_goes_through_optuna(tmp_path):
    storage, trial_id = _running_trial(f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert storage.set_trial_state_values(trial_id, TrialState.COMPLETE, [0.5]) is True
    assert storage.get_trial(trial_id).value == 0.5


def test_concurrent_claims_of_a_queued_trial_one_winner(tmp_path):
    """A trial queued by a heartbeat retry is popped by eight workers at once: one runs it."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    storage = _rdb_storage(url, heartbeat_interval=1, grace_period=2)
    study = optuna.create_study(storage=storage, study_name="s")
    study.enqueue_trial({"x": 1})
    trial_id = study.trials[0]._trial_id
    wins = _all_at_once(url, lambda s: s.set_trial_state_values(trial_id, TrialState.RUNNING))
    assert sorted(wins) == [False] * 7 + [True]
    trial = storage.get_trial(trial_id)
    assert trial.state == TrialState.RUNNING and trial.datetime_start is not None
    with pytest.raises(UpdateFinishedTrialError):
        storage.set_trial_state_values(trial_id, TrialState.COMPLETE, [1.0])
        storage.set_trial_state_values(trial_id, TrialState.RUNNING)
