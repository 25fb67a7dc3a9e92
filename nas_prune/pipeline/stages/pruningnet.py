"""Stage ``pruningnet``: the PruningNet (MetaPruning) that scores any candidate in seconds."""

from __future__ import annotations

from typing import Any

from nas_prune.distributed import is_main
from nas_prune.pipeline._context import RunContext, Stage

__all__ = ["STAGE", "pruningnet_check"]


def pruningnet_check(pnet: Any, space: Any, data: Any, *, seed: int, device: Any = None) -> dict[str, Any]:
    """Score uniform widths with the trained PruningNet; warn loudly when wider does not score higher."""
    from nas_prune.progress import console
    from nas_prune.pruningnet import PruningNetEvaluator, uniform_width_check

    check = uniform_width_check(PruningNetEvaluator(pnet, data, seed=seed, device=device), space)
    if not check["ordered"]:
        scores = " / ".join(f"{s:.3f}" for s in check["scores"])
        console.print(f"WARNING: the PruningNet scores uniform widths {check['widths']} at {scores}: wider networks "
                      "do not score higher, so its ranking is unreliable (train it longer: --pnet-epochs)",
                      style="bold red")
    return {"uniform_check": check}


def run(ctx: RunContext) -> dict[str, Any]:
    """Train the PruningNet against the teacher (resumable: ``pnet.ckpt``); write ``pnet.pt``."""
    from nas_prune.pruningnet import default_epochs, train_pruningnet

    cfg, out, n = ctx.cfg, ctx.out, ctx.train_images
    epochs = cfg.pnet_epochs or default_epochs(n)
    ctx.log(f"pruningnet: {epochs} epochs of {n:,} images, four candidates a step (about "
            f"{4 * epochs * n:,} image passes; --pnet-epochs to change)")
    pnet = train_pruningnet(ctx.space, ctx.data, epochs=epochs, teacher=out / "teacher.pt", gates=ctx.gates,
                            batch_size=ctx.batch_size, checkpoint=out / "pnet.ckpt", seed=cfg.seed, device=ctx.device)
    if not is_main():
        return {}
    pnet.save(out / "pnet.pt")
    (out / "pnet.ckpt").unlink(missing_ok=True)
    return {"parameters": sum(p.numel() for p in pnet.parameters()), "settings": pnet.train_settings,
            **pruningnet_check(pnet, ctx.space, ctx.data, seed=cfg.seed, device=ctx.device)}


STAGE = Stage("pruningnet", "the PruningNet that scores any candidate (MetaPruning)", run, needs=("teacher", "gates"), outputs=("pnet.pt",),
              reads="training split (training, BatchNorm recalibration), validation split (check)", everyone=True)
