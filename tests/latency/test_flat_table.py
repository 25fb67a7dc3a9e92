"""A table that cannot tell widths apart (fixed overhead) is said, with the budget it rules out."""

from __future__ import annotations

from nas_prune.latency import FLAT_FRACTION, flat_table_warning, narrowest_fraction


class _Table:
    """A predictor: ``base`` ms of overhead plus ``per_channel`` ms per channel of the architecture."""

    def __init__(self, base: float, per_channel: float) -> None:
        self.base, self.per_channel = base, per_channel

    def predict(self, arch) -> float:
        return self.base + self.per_channel * sum(arch.channels.values())


def test_a_table_dominated_by_overhead_is_flat(tiny_space):
    flat = _Table(base=1.0, per_channel=1e-4)
    assert narrowest_fraction(flat, tiny_space) > FLAT_FRACTION
    line = flat_table_warning(flat, tiny_space)
    assert line is not None and "cannot tell widths apart" in line and "x can be met" in line
    assert "\n" not in line


def test_a_table_that_scales_with_channels_is_not(tiny_space):
    scaling = _Table(base=0.0, per_channel=1.0)
    assert narrowest_fraction(scaling, tiny_space) < 0.9
    assert flat_table_warning(scaling, tiny_space) is None
