"""Storage URLs as users write them: ``postgresql://`` works with the installed psycopg2 driver."""

from __future__ import annotations

import optuna
import pytest

from nas_prune.search import _study, open_study
from nas_prune.search._study import normalize_storage_url

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize("installed, url, expected", [
    ({"psycopg2"}, "postgresql://u:pw@db:5432/optuna", "postgresql+psycopg2://u:pw@db:5432/optuna"),
    ({"psycopg2"}, "postgres://u@db/optuna", "postgresql+psycopg2://u@db/optuna"),
    ({"psycopg2", "psycopg"}, "postgresql://u@db/optuna", "postgresql://u@db/optuna"),
    ({"psycopg"}, "postgres://u@db/optuna", "postgresql://u@db/optuna"),
    ({"psycopg2"}, "postgresql+pg8000://u@db/optuna", "postgresql+pg8000://u@db/optuna"),
    ({"psycopg2"}, "sqlite:///run/search.db", "sqlite:///run/search.db"),
    ({"psycopg2"}, "mysql://u@db/optuna", "mysql://u@db/optuna"),
])
def test_postgresql_urls_get_the_installed_driver(monkeypatch, installed, url, expected):
    monkeypatch.setattr(_study, "_importable", lambda module: module in installed)
    assert normalize_storage_url(url) == expected


def test_the_readme_url_form_opens_a_shared_study(readme_postgres_url):
    """``--storage postgresql://postgres@127.0.0.1:PORT/...`` exactly as the README writes it."""
    assert readme_postgres_url.startswith("postgresql://")
    study = open_study(storage=readme_postgres_url, study_name="readme", directions=["maximize"],
                       sampler=optuna.samplers.RandomSampler(seed=0), heartbeat_interval=None)
    study.optimize(lambda t: t.suggest_int("x", 0, 3), n_trials=2)
    again = open_study(storage=readme_postgres_url, study_name="readme", directions=["maximize"],
                       sampler=optuna.samplers.RandomSampler(seed=0))
    assert len(again.trials) == 2
