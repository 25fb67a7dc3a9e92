"""Stage ``gates``: channel gates learned on random weights (Pruning from Scratch), whose statistics give priors."""

from __future__ import annotations

from typing import Any

from nas_prune.distributed import is_main
from nas_prune.pipeline._context import RunContext, Stage

__all__ = ["STAGE"]


def _announce(ctx: RunContext) -> None:
    from nas_prune.data import num_batches
    from nas_prune.gates import MIN_STEPS, gate_epochs

    cfg = ctx.cfg
    per_epoch = num_batches(ctx.data.train, ctx.batch_size, drop_last=True)
    epochs = gate_epochs(per_epoch, cfg.gate_steps, cfg.gate_epochs)  # what learn_gates will run
    floor = f", at least {MIN_STEPS}" if cfg.gate_steps is not None and cfg.gate_steps < MIN_STEPS else ""
    ctx.log(f"gates: {epochs} epochs of {per_epoch} batches of {cfg.batch_size} ({epochs * per_epoch} steps"
            f"{floor}, the validation split scored every epoch once the ratio is reached) on random weights "
            f"per ratio {list(cfg.ratios)} (--gate-steps / --gate-epochs to change)")


def run(ctx: RunContext) -> dict[str, Any]:
    """Learn one set of gates per target ratio; write ``gates.json``; warn when a ratio was not reached."""
    from nas_prune.gates import learn_gates
    from nas_prune.progress import console

    cfg, out = ctx.cfg, ctx.out
    _announce(ctx)
    gates = learn_gates(ctx.space, ctx.data, ratios=cfg.ratios, seeds=(cfg.seed,), epochs=cfg.gate_epochs,
                        steps=cfg.gate_steps, batch_size=ctx.batch_size, checkpoint=out / "gates.ckpt",
                        device=ctx.device)
    if not is_main():
        return {}
    gates.save(out / "gates.json")
    (out / "gates.ckpt").unlink(missing_ok=True)
    runs = [{"ratio": r.ratio, "nonzero_fraction": r.nonzero_fraction, "met_ratio": r.met_ratio} for r in gates.runs]
    for r in runs:
        if abs(r["nonzero_fraction"] - r["ratio"]) > 0.05:
            console.print(f"WARNING: gates for ratio {r['ratio']} ended with {r['nonzero_fraction']:.2f} "
                          "non-zero: their priors are unreliable (raise --gate-epochs)", style="bold red")
    return {"ratios": list(gates.ratios), "runs": runs}


STAGE = Stage("gates", "channel gates on random weights (Pruning from Scratch): priors", run, needs=("space",), outputs=("gates.json",),
              reads="training split (training), validation split (accuracy)", everyone=True)
