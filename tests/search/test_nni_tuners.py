"""nas-prune's evolution and gate-prior strategies registered as NNI tuners (``nnictl algo register``)."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest

from tests.search.conftest import ROOT, cli_env

pytest.importorskip("nni", reason="nni is not importable (pip install 'nas-prune[nni]')")

META = ROOT / "examples" / "nni" / "nas_prune_tuners.yml"


@pytest.fixture
def registered(tmp_path, monkeypatch):
    """The tuners registered the way a user does it, in a throw-away NNI config directory."""
    env = {**cli_env(), "NNI_CONFIG_DIR": str(tmp_path / "nni-config")}
    nnictl = [sys.executable, "-c", "import sys; from nni.tools.nnictl.nnictl import parse_args; "
                                    "sys.argv = ['nnictl', *sys.argv[1:]]; parse_args()"]
    proc = subprocess.run([*nnictl, "algo", "register", "--meta", str(META)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and "NasPruneGatePrior registered" in proc.stdout, proc.stdout + proc.stderr
    listed = subprocess.run([*nnictl, "algo", "list"], env=env, capture_output=True, text=True, timeout=120).stdout
    assert "NasPruneEvolution" in listed and "NasPruneGatePrior" in listed
    monkeypatch.setenv("NNI_CONFIG_DIR", env["NNI_CONFIG_DIR"])
    from nni.tools.package_utils.tuner_factory import create_builtin_class_instance

    return lambda name, args: create_builtin_class_instance(name, args, "tuners")


def _drive(tuner, space, n, score):
    """What NNI's dispatcher does: update the space, then propose, run and report trial by trial."""
    tuner.update_search_space(space.nni_search_space())
    seen = []
    for pid in range(n):
        params = tuner.generate_parameters(pid)
        arch = space.decode(params)
        seen.append(arch)
        tuner.receive_trial_result(pid, params, {"default": score(arch), "feasible": 1})
        tuner.trial_end(pid, True)
    return seen


def test_evolution_tuner_by_name(registered, tiny_space, tiny_space_file):
    tuner = registered("NasPruneEvolution", {"space": str(tiny_space_file), "seed": 0, "population_size": 4})
    seen = _drive(tuner, tiny_space, 12, lambda a: sum(a.channels.values()) / 100)
    assert len({tuple(sorted(a.channels.items())) for a in seen}) == 12  # the evolution never repeats itself
    assert len(tuner.study.trials) == 12 and tuner.study.best_value == max(sum(a.channels.values()) / 100 for a in seen)
    # A failed trial is failed in the study; a foreign search space is refused in one line.
    tuner.generate_parameters(99)
    tuner.trial_end(99, False)
    assert tuner.study.trials[-1].state.name == "FAIL"
    from nas_prune.errors import NasPruneError

    with pytest.raises(NasPruneError, match="does not match space"):
        tuner.update_search_space({"conv1": {"_type": "quniform", "_value": [8, 64, 8]}})


def test_tuner_resumes_from_imported_trials(registered, tiny_space, tiny_space_file):
    tuner = registered("NasPruneEvolution", {"space": str(tiny_space_file), "seed": 1, "population_size": 4})
    tuner.update_search_space(tiny_space.nni_search_space())
    old = tiny_space.uniform(0.5)
    params = {g.name: old.channels[g.name] for g in tiny_space.searchable_genes}
    tuner.import_data([{"parameter": params, "value": {"default": 0.9}}])
    assert tuner.study.best_value == 0.9 and tuner.study.best_trial.params == params


def test_gate_prior_tuner_needs_gates(registered, tiny_space_file):
    from nas_prune.errors import NasPruneError

    with pytest.raises(NasPruneError, match="needs classArgs.gates"):
        registered("NasPruneGatePrior", {"space": str(tiny_space_file)})


@pytest.mark.slow
def test_tuners_redraw_over_budget_candidates_and_use_gates(registered, tiny_space, tiny_artifacts, tmp_path):
    from nas_prune.data import load_data
    from nas_prune.errors import NasPruneError
    from nas_prune.gates import learn_gates
    from nas_prune.search import LatencyBudget
    from nas_prune.search._load import load_tables

    table = load_tables([tiny_artifacts / "table.json"], tiny_space)[0]
    genes = tiny_space.searchable_genes
    every = [tiny_space.decode(dict(zip((g.name for g in genes), combo)))
             for combo in itertools.product(*(g.choices for g in genes))]
    median = sorted(table.predict(a) for a in every)[len(every) // 2]  # half the space is over budget
    budget = LatencyBudget.for_tables([table], [f"{median}ms"])[0]
    args = {"space": str(tiny_artifacts / "space.json"), "tables": [str(tiny_artifacts / "table.json")],
            "budgets": [f"{median}ms"], "seed": 0, "population_size": 4}
    with pytest.raises(NasPruneError, match="unreachable"):
        registered("NasPruneEvolution", {**args, "budgets": ["0.01x"]})
    seen = _drive(registered("NasPruneEvolution", args), tiny_space, 8, lambda a: 0.5)
    assert all(budget.feasible(a) for a in seen)
    gates = tmp_path / "gates.json"
    learn_gates(tiny_space, load_data("digits", input_size=16, train_subset=128), ratios=(0.3, 0.7), epochs=1).save(gates)
    tuner = registered("NasPruneGatePrior", {**args, "gates": str(gates)})
    assert len(_drive(tuner, tiny_space, 6, lambda a: 0.5)) == 6
