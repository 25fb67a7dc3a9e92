"""Stage ``teacher``: the network to prune and to distil from, evaluated (trained weights) or trained here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nas_prune.distributed import is_main
from nas_prune.pipeline._context import RunContext, Stage

__all__ = ["STAGE"]


def _announce(ctx: RunContext, weights: Path | None) -> None:
    if weights is not None:
        ctx.log(f"teacher: trained weights {weights} (evaluated; fine-tuned only for a new classifier or "
                "with --teacher-epochs)")
    else:
        ctx.log(f"teacher: trained here from scratch, {ctx.cfg.teacher_epochs} epochs of {ctx.train_images:,} "
                "images")


def _learned(ctx: RunContext, res: dict[str, Any]) -> tuple[bool, float]:
    """Whether the teacher scores above chance on the validation split; says so loudly when not."""
    from nas_prune.teacher import chance_floor

    floor = chance_floor(len(ctx.data.val), ctx.data.num_classes)  # type: ignore[arg-type]
    learned = res["val_accuracy"] >= floor
    if not learned:  # every later stage distils and scores against this network: say so loudly
        from nas_prune.progress import console

        console.print(f"WARNING: the teacher scores {res['val_accuracy']:.1%} on the validation split, near chance "
                      f"(below {floor:.1%}): it did not learn ({res['epochs']} epochs of {ctx.train_images:,} "
                      "images); train it longer (--teacher-epochs), on more images, or bring your trained "
                      "network (--teacher)", style="bold red", markup=False)
    return learned, floor


def run(ctx: RunContext) -> dict[str, Any]:
    """Prepare ``teacher.pt`` (and ``teacher.onnx``, carrying the preprocessing in its metadata)."""
    from nas_prune.export import export_onnx, load_model
    from nas_prune.teacher import prepare_teacher

    cfg, out, data = ctx.cfg, ctx.out, ctx.data
    weights = cfg.weights_file()  # --teacher, or the named weights' file in the hub cache (looked up once)
    _announce(ctx, weights)
    res = prepare_teacher(ctx.space, data, out / "teacher.pt", weights=weights, epochs=cfg.teacher_epochs,
                          lr=cfg.teacher_lr, batch_size=ctx.batch_size, seed=cfg.seed, device=ctx.device)
    if not is_main():
        return {}  # under torchrun the other processes trained beside rank 0, which reports
    if res.get("weights", {}).get("replaced_classifier"):
        ctx.log(f"teacher: the classifier for {res['weights']['file_classes']} classes was replaced for the "
                f"data's {data.num_classes} and fine-tuned {res['epochs']} epochs (transfer)")
    ctx.log(f"teacher: validation {res['val_accuracy']:.2%}, test {res['test_accuracy']:.2%}")
    learned, floor = _learned(ctx, res)
    export_onnx(load_model(ctx.space, out / "teacher.pt"), ctx.space.example_input(), out / "teacher.onnx",
                metadata={"preprocess": cfg.preprocess.to_json()})
    return {"accuracy": res["test_accuracy"], "val_accuracy": res["val_accuracy"], "source": res["source"],
            "epochs": res["epochs"], "lr": res["lr"], "weights": res.get("weights"), "learned": learned,
            "chance_floor": floor}


STAGE = Stage("teacher", "the user's trained weights evaluated (fine-tuned for new classes), or a teacher trained here", run, needs=("space",),
              outputs=("teacher.pt", "teacher.onnx"),
              reads="training split (training), validation per epoch, test at the end", everyone=True)
