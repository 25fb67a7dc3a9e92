"""How long a finish trains by default: epochs that scale with the size of the training split.

A finish from the teacher's own channels needs a number of *images seen*, not of epochs: 8 epochs
of a 10k-image split and 8 epochs of a 1M-image one are a 12x different amount of training. The
default is :data:`IMAGES_SEEN` training images, rounded to whole epochs and clamped to
[:data:`MIN_EPOCHS`, :data:`MAX_EPOCHS`] (``benchmarks/finish_recipe.py``: on Fashion-MNIST with
10k training images, KD for 16 epochs = 160k images beat 8 epochs at 0.5x of the teacher's latency;
see the README's finish section). Data-free methods never read the split: their epochs are
:data:`DATA_FREE_STEPS` generator/student steps of ``config.dafl_steps_per_epoch`` each
(``benchmarks/data_free.py``).
"""

from __future__ import annotations

import math

from nas_prune.distill._config import DistillConfig
from nas_prune.distill._methods import get_method

__all__ = ["default_epochs", "IMAGES_SEEN", "MIN_EPOCHS", "MAX_EPOCHS", "DATA_FREE_STEPS"]

#: Training images a labelled finish sees by default (Fashion-MNIST 10k images x 16 epochs).
IMAGES_SEEN = 160_000
#: Fewest epochs by default (a large split still gets a schedule with a warm-up and a decay).
MIN_EPOCHS = 4
#: Most epochs by default (a few hundred images are not worth hundreds of epochs).
MAX_EPOCHS = 30
#: Generator/student steps of a data-free finish by default.
DATA_FREE_STEPS = 600


def default_epochs(method: str, n_train: int, config: DistillConfig | None = None) -> int:
    """Default epochs of a finish with ``method`` on a training split of ``n_train`` images.

    Raises:
        NasPruneError: unknown method.
    """
    cfg = config or DistillConfig()
    if not get_method(method).reads_train_data:
        return max(1, math.ceil(DATA_FREE_STEPS / cfg.dafl_steps_per_epoch))
    return int(min(MAX_EPOCHS, max(MIN_EPOCHS, round(IMAGES_SEEN / max(1, n_train)))))
