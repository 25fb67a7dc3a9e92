"""Budgets and the binary search that meets them."""

from __future__ import annotations

import pytest

from nas_prune.errors import NasPruneError, SpaceMismatchError
from nas_prune.gates import Budget, prune


def test_parse():
    assert Budget.parse("flops:0.5") == Budget("flops", 0.5)
    assert Budget.parse("params:0.25") == Budget("params", 0.25)
    assert Budget.parse("flops:120M") == Budget("flops", 120e6)
    assert Budget.parse("latency:tables/t.json:1.8ms") == Budget("latency", 1.8, "tables/t.json")
    assert Budget.parse("latency:t.json:2") == Budget("latency", 2.0, "t.json")


@pytest.mark.parametrize("text", ["flops", "flops:-1", "flops:abc", "speed:0.5", "latency:1.8ms", "params:nan",
                                  "latency:t.json:0ms"])
def test_parse_errors_are_one_line(text):
    with pytest.raises(NasPruneError) as err:
        Budget.parse(text)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("budget", ["flops:0.3", "flops:0.5", "flops:0.8", "params:0.4", "params:0.7"])
def test_bisection_meets_the_budget_and_never_empties_a_gene(tiny_gates, tiny_space, budget):
    b = Budget.parse(budget)
    arch = tiny_gates.prune(tiny_space, b)
    channels = tiny_space.validate(arch)  # every gene on its grid
    full = tiny_space.count(tiny_space.full())[b.kind]
    assert tiny_space.count(arch)[b.kind] <= b.value * full
    assert all(channels[g.name] >= g.low >= 1 for g in tiny_space.genes)


def test_the_search_is_tight(tiny_gates, tiny_space):
    """Keeping one more globally ranked channel would either break the budget or change nothing."""
    from nas_prune.gates._budget import _ranking, architecture_at

    b = Budget.parse("flops:0.5")
    arch = tiny_gates.prune(tiny_space, b)
    ranking = _ranking(tiny_gates, tiny_space, None)
    limit = 0.5 * tiny_space.count(tiny_space.full())["flops"]
    ks = [k for k in range(len(ranking) + 1) if architecture_at(tiny_space, ranking, k) == arch]
    bigger = architecture_at(tiny_space, ranking, max(ks) + 1)
    assert bigger == arch or tiny_space.count(bigger)["flops"] > limit


def test_tighter_budgets_give_smaller_architectures(tiny_gates, tiny_space):
    flops = [tiny_space.count(tiny_gates.prune(tiny_space, f"flops:{r}"))["flops"] for r in (0.3, 0.5, 0.7, 1.0)]
    assert flops == sorted(flops)
    assert tiny_gates.prune(tiny_space, "flops:1.0") == tiny_space.full()


def test_unreachable_budget(tiny_gates, tiny_space):
    with pytest.raises(NasPruneError, match="cannot be met"):
        tiny_gates.prune(tiny_space, "flops:0.001")


class FlopsClock:
    """A stand-in latency table: 1 ms per million multiply-accumulates, plus 0.1 ms."""

    def __init__(self, space):
        self.space, self.calls = space, 0

    def predict(self, arch) -> float:
        self.calls += 1
        return 0.1 + self.space.count(arch)["flops"] / 1e6


def test_latency_budget_with_any_predictor(tiny_gates, tiny_space):
    clock = FlopsClock(tiny_space)
    full_ms = clock.predict(tiny_space.full())
    arch = tiny_gates.prune(tiny_space, Budget("latency", 0.6 * full_ms, clock))
    assert clock.predict(arch) <= 0.6 * full_ms
    assert clock.calls <= 2 + 20  # a binary search, not a scan


def test_gates_of_another_space_are_refused(tiny_gates, xy_space_and_gates):
    space, _ = xy_space_and_gates
    with pytest.raises(SpaceMismatchError):
        prune(tiny_gates, space, Budget.parse("flops:0.5"))


@pytest.mark.slow
def test_latency_budget_with_a_real_table(tiny_gates, tiny_space, tmp_path):
    latency = pytest.importorskip("nas_prune.latency")
    path = tmp_path / "table.json"
    latency.build_table(tiny_space, threads=1, output=path, nets=12, rounds=3, runs_per_round=5, warmup=2,
                        group_size=6, device_name="test-vm")
    table = latency.LatencyTable.load(path)
    smallest = tiny_space.decode({g.name: g.low for g in tiny_space.searchable_genes})
    target = (table.predict(smallest) + table.predict(tiny_space.full())) / 2  # fixed costs dominate tiny nets
    arch = tiny_gates.prune(tiny_space, Budget.parse(f"latency:{path}:{target}ms"))
    assert table.predict(arch) <= target
    tiny_space.validate(arch)


def test_latency_budgets_speak_the_budget_language(tiny_gates, tiny_space):
    assert Budget.parse("latency:t.json:1800us") == Budget("latency", pytest.approx(1.8), "t.json")
    assert Budget.parse("latency:t.json:0.5x") == Budget("latency", 0.5, "t.json", relative=True)
    assert str(Budget.parse("latency:t.json:0.5x")) == "latency:t.json:0.5x"
    clock = FlopsClock(tiny_space)
    arch = tiny_gates.prune(tiny_space, Budget("latency", 0.6, clock, relative=True))
    assert clock.predict(arch) <= 0.6 * clock.predict(tiny_space.full())
