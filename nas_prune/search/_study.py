"""Studies that many workers share and a killed search resumes: storage, stop rule, result file."""

from __future__ import annotations

import os
import random
import time
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from nas_prune.errors import NasPruneError
from nas_prune.search._budget import LatencyBudget, min_latency_architecture
from nas_prune.search._objective import ARCH_ATTR
from nas_prune.search._pick import pick_trial, record_pick
from nas_prune.space import ChannelSpace

__all__ = [
    "NoFeasibleArchitectureError",
    "RESULT_FORMAT",
    "open_study",
    "run_trials",
    "search_result",
    "check_budgets_reachable",
    "normalize_storage_url",
]

RESULT_FORMAT = "nas-prune/search-result"
_STUDY_ATTR = "nas_prune"


class NoFeasibleArchitectureError(NasPruneError):
    """No architecture of the study meets every latency budget."""


def _storage_class() -> type:
    """Optuna's RDBStorage, also failing trials whose worker died before its first heartbeat.

    Optuna's stale check (``RDBStorage._get_stale_trial_ids``) skips a RUNNING trial that has no
    heartbeat row yet. A worker killed between creating its trial (``study.ask``, which includes the
    sampler's relative sampling) and the heartbeat thread's first beat leaves such a trial, and every
    surviving worker would wait for it forever. Here a RUNNING trial without a heartbeat is stale
    once it started more than the grace period ago (by the workers' clocks, which stamp
    ``datetime_start``), and Optuna then fails and retries it like any other stale trial.
    """
    import optuna
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session
    from optuna.trial import TrialState

    class _RDBStorage(optuna.storages.RDBStorage):
        def _get_stale_trial_ids(self, study_id: int) -> list[int]:
            stale = super()._get_stale_trial_ids(study_id)
            grace = self.grace_period if self.grace_period is not None else 2 * (self.heartbeat_interval or 0)
            # Optuna 5 stores trial datetimes as naive UTC (the column behind ``datetime_start``).
            cutoff = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(seconds=grace)
            with _create_scoped_session(self.scoped_session, True) as session:
                never_beat = (
                    session.query(models.TrialModel.trial_id)
                    .outerjoin(models.TrialHeartbeatModel,
                               models.TrialHeartbeatModel.trial_id == models.TrialModel.trial_id)
                    .filter(models.TrialModel.study_id == study_id,
                            models.TrialModel.state == TrialState.RUNNING,
                            models.TrialModel._datetime_start_utc < cutoff,
                            models.TrialHeartbeatModel.trial_heartbeat_id.is_(None))
                    .all()
                )
            return stale + [trial_id for (trial_id,) in never_beat if trial_id not in stale]

        def set_trial_state_values(self, trial_id: int, state: TrialState,
                                   values: Sequence[float] | None = None) -> bool:
            """Claim a queued trial, or fail a running one, in one conditional UPDATE.

            Optuna reads the trial ``FOR UPDATE`` and then writes it; SQLite ignores ``FOR UPDATE``,
            so two workers could both see a queued trial WAITING and both run it (the second's
            ``tell`` then fails: "Cannot tell a COMPLETE trial"), or both see a dead worker's trial
            RUNNING, both fail it and both queue a retry (the CI run of 2026-12-01 ran it twice).
            ``UPDATE ... WHERE state = <expected>`` lets exactly one win on every database; the
            loser gets what Optuna's callers expect (``False`` for a claim, Optuna's
            ``UpdateFinishedTrialError`` for a finished trial).
            """
            transitions = {TrialState.RUNNING: (TrialState.WAITING, models.TrialModel._datetime_start_utc),
                           TrialState.FAIL: (TrialState.RUNNING, models.TrialModel._datetime_complete_utc)}
            if state not in transitions or values is not None:
                return bool(super().set_trial_state_values(trial_id, state, values))
            expected, stamp = transitions[state]
            with _create_scoped_session(self.scoped_session, True) as session:
                updated = (
                    session.query(models.TrialModel)
                    .filter(models.TrialModel.trial_id == trial_id, models.TrialModel.state == expected)
                    .update({models.TrialModel.state: state,
                             stamp: datetime.now(timezone.utc).replace(tzinfo=None)},
                            synchronize_session=False)
                )
            if updated:
                return True
            current = self.get_trial(trial_id).state
            self.check_trial_is_updatable(trial_id, current)  # finished: Optuna's error
            if state == TrialState.RUNNING:
                return False  # claimed by another worker first
            return bool(super().set_trial_state_values(trial_id, state, values))  # WAITING -> FAIL

    return _RDBStorage


def _importable(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def normalize_storage_url(url: str) -> str:
    """The storage URL with a PostgreSQL driver SQLAlchemy can load here.

    SQLAlchemy 2.1 maps ``postgresql://`` (and nas-prune maps ``postgres://``) to the psycopg 3
    driver; when only psycopg2 (``psycopg2-binary``, the ``postgres`` extra) is installed the URL
    becomes ``postgresql+psycopg2://``. URLs naming a driver (``postgresql+...://``) and other
    databases are returned unchanged.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("postgresql", "postgres"):
        return url
    if _importable("psycopg") or not _importable("psycopg2"):
        return f"postgresql://{rest}"  # psycopg 3 is SQLAlchemy's default (or no driver: its own error)
    return f"postgresql+psycopg2://{rest}"


def _rdb_storage(url: str, heartbeat_interval: int | None, grace_period: int | None) -> Any:
    import optuna

    url = normalize_storage_url(url)

    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine_kwargs = {"connect_args": {"timeout": 60}}  # several local processes share one file
    else:
        engine_kwargs = {"pool_pre_ping": True}
    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna since v2.8
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        callback = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3) if heartbeat_interval else None
    for attempt in range(5):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage_class = _storage_class() if heartbeat_interval else optuna.storages.RDBStorage
                return storage_class(
                    url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period, heartbeat_stale_trial_callback=callback,
                )
        except Exception as exc:  # sqlalchemy raises many kinds (bad URL, refused connection, auth)
            error = exc
            # Workers that start together on an empty database race to create the schema: the
            # losers see a unique-key violation and succeed once the winner has committed.
            if "IntegrityError" not in type(exc).__name__ and "already exists" not in str(exc):
                break
            time.sleep(0.2 * (attempt + 1) + random.random() * 0.3)
    raise NasPruneError(
        f"cannot open the study storage {redact(url)} ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}): "
        "check the URL, that the database server runs and the driver (psycopg2 for PostgreSQL: "
        "pip install 'nas-prune[postgres]') is installed"
    )


def redact(url: str) -> str:
    """The storage URL without its password."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def open_study(
    *,
    storage: str,
    study_name: str,
    directions: Sequence[str],
    sampler: Any,
    settings: dict[str, Any] | None = None,
    heartbeat_interval: int | None = 10,
    grace_period: int | None = None,
) -> Any:
    """Create the study, or load it when it exists (a second worker, or a resumed search).

    ``storage`` is an SQLAlchemy URL (``sqlite:///run/search.db``, ``postgresql://user@host/db``;
    see :func:`normalize_storage_url` for the PostgreSQL driver).
    Heartbeats mark a trial whose worker died as failed after ``grace_period`` seconds (default
    ``2 * heartbeat_interval``) and queue it again (up to 3 times). ``settings`` (space id, budgets,
    ...) are stored on a new study and must match when the study is loaded again, so workers with
    different budgets cannot mix in one study.

    Raises:
        NasPruneError: the storage cannot be opened, or the study exists with other settings.
    """
    import optuna

    if grace_period is None and heartbeat_interval:
        grace_period = max(2 * heartbeat_interval, heartbeat_interval + 1)
    rdb = _rdb_storage(storage, heartbeat_interval, grace_period)
    try:
        study = optuna.create_study(storage=rdb, study_name=study_name, directions=list(directions),
                                    sampler=sampler, load_if_exists=True)
    except Exception as exc:
        raise NasPruneError(f"cannot open study {study_name!r} in {redact(storage)} ({exc})") from None
    want = [d.lower() for d in directions]
    have = [d.name.lower() for d in study.directions]
    if have != want:
        raise NasPruneError(
            f"study {study_name!r} in {redact(storage)} optimises {have}, not {want}: "
            "use another --study-name (or drop/add --multi-objective to match it)"
        )
    if settings is not None:
        stored = study.user_attrs.get(_STUDY_ATTR)
        if stored is None:
            study.set_user_attr(_STUDY_ATTR, settings)
        elif stored != settings:
            diff = sorted(k for k in set(stored) | set(settings) if stored.get(k) != settings.get(k))
            raise NasPruneError(
                f"study {study_name!r} in {redact(storage)} was started with other settings ({', '.join(diff)}): "
                "use the same space, tables and budgets to resume it, or another --study-name"
            )
    return study


def _count(study: Any) -> tuple[int, int, int]:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    done = sum(t.state == TrialState.COMPLETE for t in trials)
    running = sum(t.state == TrialState.RUNNING for t in trials)
    waiting = sum(t.state == TrialState.WAITING for t in trials)
    return done, running, waiting


def run_trials(
    study: Any,
    objective: Callable[[Any], Any],
    n_trials: int,
    *,
    on_progress: Callable[[int], None] | None = None,
    poll_seconds: float = 1.0,
    log: Callable[[str], None] | None = None,
) -> int:
    """Run trials until the study holds ``n_trials`` completed trials, counted over every worker.

    Each worker stops creating trials once completed + running + queued trials reach
    ``n_trials`` (``optuna.study.MaxTrialsCallback``; two workers that check at the same instant may
    overshoot by one trial each), runs the trials queued by heartbeat retries, and waits for the
    trials other workers are running, so the study is complete when any worker returns. A trial
    whose worker died is failed by the heartbeat after the grace period and run again.

    Returns:
        The number of completed trials.
    """
    import optuna
    from optuna.storages import fail_stale_trials
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    heartbeat = optuna.storages._heartbeat.is_heartbeat_enabled(study._storage)
    stop = MaxTrialsCallback(n_trials, states=(TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING))
    last = [_count(study)[0]]

    def progress(study_: Any, trial: Any) -> None:
        done = _count(study_)[0]
        if on_progress is not None and done > last[0]:
            on_progress(done - last[0])
        last[0] = max(last[0], done)

    if on_progress is not None and last[0]:
        on_progress(last[0])
    said_wait = False
    while True:
        if heartbeat:
            fail_stale_trials(study)
        done, running, waiting = _count(study)
        progress(study, None)
        if done >= n_trials and not (heartbeat and (running or waiting)):  # dead workers: fail, retry first
            return done
        if waiting or done + running < n_trials:
            study.optimize(objective, n_trials=max(waiting, n_trials - done - running), callbacks=[stop, progress],
                           gc_after_trial=False)
            continue
        if not heartbeat:
            return done  # cannot tell a live worker from a dead one: leave the rest to them
        if log is not None and not said_wait:
            log(f"waiting for {running} trial(s) running in other workers (or dead ones, failed after the grace period)")
            said_wait = True
        time.sleep(poll_seconds)


def check_budgets_reachable(space: ChannelSpace, budgets: Sequence[LatencyBudget]) -> None:
    """Fail before searching when even the narrowest architecture breaks a budget."""
    fastest = min_latency_architecture(space)
    for b in budgets:
        ms = b.predict(fastest)
        if ms > b.budget_ms:
            raise NoFeasibleArchitectureError(
                f"budget {b.budget_ms:g} ms on {b.name} is unreachable: the table's fastest architecture "
                f"(every gene at its narrowest) is predicted at {ms:.4g} ms; raise the budget above that"
            )


def _trial_record(t: Any, space: ChannelSpace, budgets: Sequence[LatencyBudget]) -> dict[str, Any]:
    return {
        "trial": t.number,
        "architecture": {"space": space.id, "channels": dict(t.user_attrs.get(ARCH_ATTR, {}))},
        "score": t.values[0] if t.values else None,
        "score_se": t.user_attrs.get("pnet_score_se"),
        "accuracy": t.user_attrs.get("accuracy", t.values[0] if t.values else None),
        "latency_ms": {b.name: t.user_attrs.get(f"latency_ms:{b.name}") for b in budgets},
        "flops": t.user_attrs.get("flops"),
        "params": t.user_attrs.get("params"),
        "values": list(t.values) if t.values else None,
    }


def search_result(
    study: Any,
    space: ChannelSpace,
    budgets: Sequence[LatencyBudget],
    *,
    storage: str | None = None,
    extra: dict[str, Any] | None = None,
    record: bool = True,
) -> dict[str, Any]:
    """The content of ``best.json``: nas-prune's pick and, multi-objective, the Pareto front.

    ``best`` is :func:`pick_trial`'s trial (the documented rule: the fastest feasible trial within
    the highest score's standard error), ``pick`` says which trial Optuna's ``best_trial`` is and
    why they differ. With ``record`` the pick is also stored in the study (:func:`record_pick`), so
    ``study.user_attrs["nas_prune:pick"]`` and optuna-dashboard show the same trial as ``best.json``.

    Raises:
        NoFeasibleArchitectureError: no completed trial meets every budget (the message names the
            budgets and each table's fastest predicted latency).
    """
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    multi = len(study.directions) > 1
    pick = pick_trial(study, budgets)
    pareto = sorted(study.best_trials, key=lambda t: (-(t.values[0]), t.values[1])) if multi else []
    if pick is None:
        fastest = min_latency_architecture(space)
        limits = "; ".join(
            f"budget {b.budget_ms:g} ms on {b.name} (fastest architecture predicted at {b.predict(fastest):.4g} ms)"
            for b in budgets
        )
        raise NoFeasibleArchitectureError(
            f"none of the {len(complete)} completed trials of study {study.study_name!r} is feasible: {limits or 'no budget'}; "
            "raise the budget or run more trials (--sampler evolution redraws infeasible candidates)"
        )
    n_feasible = sum(all(v <= 0 for v in t.constraints.values()) for t in complete)
    result: dict[str, Any] = {
        "format": RESULT_FORMAT,
        "version": 1,
        "study": study.study_name,
        "storage": redact(storage) if storage else None,
        "space": space.id,
        "directions": [d.name.lower() for d in study.directions],
        "budgets": [{"name": b.name, "budget_ms": b.budget_ms} for b in budgets],
        "n_complete": len(complete),
        "n_feasible": n_feasible,
        "n_evaluated": sum(bool(t.user_attrs.get("evaluated")) for t in complete),
        "best": _trial_record(pick.trial, space, budgets),
        "pick": pick.as_dict(budgets),
    }
    if multi:
        result["pareto_front"] = [_trial_record(t, space, budgets) for t in pareto]
    if extra:
        result.update(extra)
    if record:
        record_pick(study, pick, budgets)
    return result


def default_storage(output: str | os.PathLike[str]) -> str:
    """SQLite file next to ``output`` (the run directory): ``sqlite:///<dir>/search.db``."""
    path = Path(output).resolve().parent / "search.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"
