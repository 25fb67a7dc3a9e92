"""The teacher: the unpruned network every later stage measures against, trained here or brought by the user.

The latency budget is a fraction of the teacher's measured latency and distillation trains the
pruned student against it. :func:`prepare_teacher` starts from the user's trained weights
(:func:`nas_prune.pretrained.load_weights`) or from the factory's initial weights; trained
weights are **evaluated** (and optionally fine-tuned at a fine-tuning learning rate), a classifier
replaced for other classes is fine-tuned first (transfer), and initial weights are trained from
scratch. Training checkpoints every epoch, so a killed run resumes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas_prune.data import DataBundle
from nas_prune.errors import InvalidFileError, NasPruneError
from nas_prune.export import load_checkpoint, save_model, save_state_dict
from nas_prune.space import ChannelSpace

if TYPE_CHECKING:
    import torch

__all__ = ["train_teacher", "prepare_teacher", "FINETUNE_LR", "SCRATCH_LR", "transfer_epochs", "ChanceLevelError",
           "check_above_chance", "chance_floor"]

SCRATCH_LR = 0.05  #: peak one-cycle SGD learning rate from the factory's initial weights
FINETUNE_LR = 0.005  #: the same for trained weights: a tenth, so fine-tuning does not undo them
TRANSFER_IMAGES = 50_000  #: a replaced classifier is fine-tuned for about this many images' worth (2-10 epochs)


class ChanceLevelError(NasPruneError):
    """The teacher scores near chance on the validation split: wrong preprocessing or class order."""


def transfer_epochs(n_train: int) -> int:
    """Epochs of a transfer fine-tune (a new classifier) on ``n_train`` training images: 2 to 10."""
    return int(min(10, max(2, math.ceil(TRANSFER_IMAGES / max(1, n_train)))))


def chance_floor(n: int, num_classes: int) -> float:
    """The accuracy a teacher must reach on ``n`` validation images to be clearly above chance:
    chance (1 / classes) plus three binomial standard errors, and at least a fifth of the way to 100 %."""
    chance = 1.0 / max(2, num_classes)
    se = math.sqrt(chance * (1 - chance) / max(1, n))
    return max(chance + 3 * se, chance + 0.2 * (1 - chance))


def check_above_chance(accuracy: float, n: int, num_classes: int, *, what: str) -> None:
    """Refuse a teacher whose validation accuracy is not clearly above chance (1 / classes).

    Clearly: above chance by three binomial standard errors and by a fifth of the way to 100 %.

    Raises:
        ChanceLevelError: one line naming the likely causes (preprocessing, class order) and the fix.
    """
    chance = 1.0 / max(2, num_classes)
    if accuracy < chance_floor(n, num_classes):
        raise ChanceLevelError(
            f"{what} scores {accuracy:.1%} on the {n} validation images, near chance ({chance:.1%}): the "
            "preprocessing (--mean/--std, as the network was trained) or the class order (the folders' "
            "sorted names must be its classes' order) is likely wrong; set them and run again")


def train_teacher(space: ChannelSpace, data: str | DataBundle, output: Path, *, epochs: int, batch_size: int = 64,
                  lr: float = SCRATCH_LR, train_subset: int | None = None, seed: int = 0,
                  device: str = "cpu") -> dict:
    """Train the space's base model from its initial weights; checkpoints every epoch to ``output``.partial.

    ``data`` is a loaded :class:`~nas_prune.data.DataBundle` or a spec for
    :func:`~nas_prune.data.load_data`. Returns ``{"val_accuracy", "test_accuracy", "history"}``;
    re-running resumes after the last epoch.
    """
    return prepare_teacher(space, data, output, epochs=epochs, batch_size=batch_size, lr=lr,
                           train_subset=train_subset, seed=seed, device=device)


def prepare_teacher(space: ChannelSpace, data: str | DataBundle, output: Path, *, weights: Path | None = None,
                    epochs: int | None = None, batch_size: int = 64, lr: float | None = None,
                    train_subset: int | None = None, seed: int = 0, device: str | torch.device = "cpu",
                    check_chance: bool = True) -> dict[str, Any]:
    """Make the run's teacher at ``output`` (a nas-prune checkpoint) from trained weights or from scratch.

    Args:
        space: The run's space (its base model is the teacher's architecture).
        data: A :class:`~nas_prune.data.DataBundle`, or a spec loaded with nas-prune's preprocessing.
        output: The teacher checkpoint to write; ``output``.partial holds the last finished epoch.
        weights: The user's trained weights (any layout :func:`~nas_prune.pretrained.load_weights`
            reads); ``None`` trains from the factory's initial weights.
        epochs: Training epochs. ``None``: 0 for trained weights (evaluated only), a transfer fine-tune
            (:func:`transfer_epochs`) when their classifier was replaced; required from scratch.
        lr: Peak learning rate; ``None``: :data:`FINETUNE_LR` from trained weights, :data:`SCRATCH_LR` otherwise.
        device: ``auto | cpu | cuda[:N]``; the checkpoint is written from the CPU, so it loads anywhere.
        check_chance: Refuse trained weights that score near chance before any training
            (:class:`ChanceLevelError`).

    Returns:
        ``{"val_accuracy", "test_accuracy", "history", "epochs", "lr", "source", "weights"?}``.
    """
    from nas_prune.data import load_data
    from nas_prune.pretrained import load_weights
    from nas_prune.training import TrainConfig, evaluate, fit, resolve_device, set_seed

    output = Path(output)
    resolve_device(device)  # an absent GPU is refused before any data is loaded
    set_seed(seed)
    if isinstance(data, str):
        data = load_data(data, input_size=space.input_shape[-1], train_subset=train_subset, seed=seed)
    model = space.build_model()
    report, val_accuracy = None, None
    if weights is not None:
        report = load_weights(model, weights, num_classes=space.model["num_classes"], space_id=space.id)
        if check_chance and not report.replaced_classifier:
            val_accuracy = evaluate(model, data.val)  # reused below when the weights are not trained further
            check_above_chance(val_accuracy, len(data.val), data.num_classes,  # type: ignore[arg-type]
                               what=f"the trained network in {weights}")
    if epochs is None:
        if report is None:
            raise NasPruneError("training a teacher from scratch needs its epochs: give --teacher-epochs")
        epochs = transfer_epochs(len(data.train)) if report.replaced_classifier else 0  # type: ignore[arg-type]
    lr = lr if lr is not None else (FINETUNE_LR if report is not None else SCRATCH_LR)
    partial = output.with_name(output.name + ".partial")
    start, opt_state, history = 0, None, []
    if partial.exists() and epochs > 0:
        ckpt = load_checkpoint(partial, what="partial teacher checkpoint")
        try:
            model.load_state_dict(ckpt["state_dict"])
            start, opt_state, history = int(ckpt["epoch"]), dict(ckpt["optimizer"]), list(ckpt["history"])
        except (KeyError, TypeError, ValueError, RuntimeError):
            raise InvalidFileError(f"partial teacher checkpoint {partial} is not one of this model's: "
                                   "delete it to start training over") from None
    if epochs > 0:
        cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, label="teacher", history=history,
                          device=device)

        def on_epoch(epoch: int, record: dict) -> None:
            opt = record.pop("_optimizer")
            history.append(record)
            save_state_dict(model, partial, epoch=epoch, optimizer=opt, history=history)

        fit(model, data.train, data.val, cfg, on_epoch=on_epoch, start_epoch=start, optimizer_state=opt_state)
    if epochs > 0 or val_accuracy is None:
        val_accuracy = evaluate(model, data.val)
    result: dict[str, Any] = {"val_accuracy": val_accuracy, "test_accuracy": evaluate(model, data.test),
                              "history": history, "epochs": epochs, "lr": lr if epochs else None,
                              "source": "trained weights" if report is not None else "trained from scratch"}
    if report is not None:
        result["weights"] = report.to_json()
    model.cpu()
    save_model(model, output, space_id=space.id, data=data.name, test_accuracy=result["test_accuracy"],
               history=history, preprocess=data.preprocess.to_json(),
               weights=str(weights) if weights is not None else None)
    partial.unlink(missing_ok=True)
    return result
