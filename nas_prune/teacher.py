"""Training the teacher: the unpruned base model of a space, checkpointed every epoch so a killed run resumes.

The teacher is what every later stage measures against: the latency budget is a fraction of its
measured latency and distillation trains the pruned student against it.
"""

from __future__ import annotations

from pathlib import Path

from nas_prune.errors import InvalidFileError
from nas_prune.export import load_checkpoint, save_model, save_state_dict
from nas_prune.space import ChannelSpace

__all__ = ["train_teacher"]


def train_teacher(space: ChannelSpace, data_spec: str, output: Path, *, epochs: int, batch_size: int = 64,
                  lr: float = 0.05, train_subset: int | None = None, seed: int = 0, device: str = "cpu") -> dict:
    """Train the space's base model on ``data_spec``; checkpoints every epoch to ``output``.partial.

    ``device`` is ``auto | cpu | cuda[:N]`` (:func:`nas_prune.training.resolve_device`); the
    checkpoint is written from the CPU, so it loads anywhere.

    Returns ``{"val_accuracy", "test_accuracy", "history"}``; re-running resumes after the last epoch.
    """
    from nas_prune.data import load_data
    from nas_prune.training import TrainConfig, evaluate, fit, resolve_device, set_seed

    output = Path(output)
    resolve_device(device)  # an absent GPU is refused before any data is loaded
    set_seed(seed)
    data = load_data(data_spec, input_size=space.input_shape[-1], train_subset=train_subset, seed=seed)
    model = space.build_model()
    partial = output.with_name(output.name + ".partial")
    start, opt_state, history = 0, None, []
    if partial.exists():
        ckpt = load_checkpoint(partial, what="partial teacher checkpoint")
        try:
            model.load_state_dict(ckpt["state_dict"])
            start, opt_state, history = int(ckpt["epoch"]), dict(ckpt["optimizer"]), list(ckpt["history"])
        except (KeyError, TypeError, ValueError, RuntimeError):
            raise InvalidFileError(f"partial teacher checkpoint {partial} is not one of this model's: "
                                   "delete it to start training over") from None
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, label="teacher", history=history,
                      device=device)

    def on_epoch(epoch: int, record: dict) -> None:
        opt = record.pop("_optimizer")
        history.append(record)
        save_state_dict(model, partial, epoch=epoch, optimizer=opt, history=history)

    fit(model, data.train, data.val, cfg, on_epoch=on_epoch, start_epoch=start, optimizer_state=opt_state)
    result = {"val_accuracy": evaluate(model, data.val), "test_accuracy": evaluate(model, data.test), "history": history}
    model.cpu()
    save_model(model, output, space_id=space.id, data=data_spec, test_accuracy=result["test_accuracy"], history=history)
    partial.unlink(missing_ok=True)
    return result
