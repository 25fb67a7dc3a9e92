"""Deprecated alias of :mod:`nas_prune.on_device` (the torch-free latency runner), kept for one release.

The package was renamed because ``--device`` is the torch training device while this package is the
runner that times networks on the *target* device. Import :mod:`nas_prune.on_device` instead; this
alias warns once and will be removed in the next release.
"""

from __future__ import annotations

import warnings

from nas_prune.on_device import *  # noqa: F403 (the alias re-exports every public name)
from nas_prune.on_device import __all__  # noqa: F401

warnings.warn("nas_prune.device is renamed nas_prune.on_device (the on-device latency runner); this alias will be "
              "removed in the next release: import nas_prune.on_device", DeprecationWarning, stacklevel=2)
