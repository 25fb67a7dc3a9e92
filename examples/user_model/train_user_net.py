"""Train the user's network on Fashion-MNIST with plain PyTorch, the way a user would: no nas-prune.

Reads Debian's ``dataset-fashion-mnist`` idx files itself, resizes to 32x32 (bilinear), repeats
the grey channel three times and normalises with the dataset's own statistics (mean 0.2860,
std 0.3530); trains on all 60,000 training images, evaluates on the 10,000 test images, and saves
``torch.save(model.state_dict(), OUT)``. Prints ``{"test_accuracy": ...}``.

    python examples/user_model/train_user_net.py --epochs 6 -o net.pt
    python examples/user_model/train_user_net.py --model mobilenet_v2 --epochs 8 -o mnv2.pt   # torchvision's
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.2860, 0.3530


def read_idx(path: Path) -> np.ndarray:
    raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(root: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    base = Path(root)
    stem = "train" if split == "train" else "t10k"
    find = lambda s: next(p for p in (base / f"{s}.gz", base / s) if p.exists())  # noqa: E731
    x = torch.from_numpy(read_idx(find(f"{stem}-images-idx3-ubyte")).copy()).unsqueeze(1)
    y = torch.from_numpy(read_idx(find(f"{stem}-labels-idx1-ubyte")).copy()).long()
    return x, y


def prepare(x: torch.Tensor) -> torch.Tensor:
    """uint8 [N, 1, 28, 28] -> normalised float [N, 3, 32, 32]."""
    x = F.interpolate(x.float() / 255.0, size=(32, 32), mode="bilinear", align_corners=False).clamp(0, 1)
    x = (x * 255).round() / 255  # the images are stored as 8-bit, as any image file would be
    return ((x - MEAN) / STD).expand(-1, 3, -1, -1)


def build(name: str) -> torch.nn.Module:
    if name == "user_resnet":
        sys.path.insert(0, str(Path(__file__).parent))
        from user_net import user_resnet

        return user_resnet(10)
    import torchvision

    return torchvision.models.get_model(name, weights=None, num_classes=10)


def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), 500):
            correct += int((model(prepare(x[i:i + 500])).argmax(1) == y[i:i + 500]).sum())
    return correct / len(x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="user_resnet")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--root", default=ROOT)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--output", type=Path, required=True)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    x, y = load(a.root, "train")
    xt, yt = load(a.root, "test")
    model = build(a.model)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, weight_decay=5e-4, nesterov=True)
    steps = a.epochs * (len(x) // a.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=steps, pct_start=0.2)
    start = time.time()
    for epoch in range(a.epochs):
        model.train()
        perm = torch.randperm(len(x))
        for i in range(0, len(x) - a.batch_size + 1, a.batch_size):
            idx = perm[i:i + a.batch_size]
            xb = prepare(x[idx])
            xb = torch.where(torch.rand(len(idx), 1, 1, 1) < 0.5, xb, xb.flip(3))  # horizontal flips
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        print(f"epoch {epoch + 1}/{a.epochs}: loss {loss.item():.3f} ({time.time() - start:.0f} s)", file=sys.stderr)
    acc = evaluate(model, xt, yt)
    a.output.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), a.output)
    print(json.dumps({"test_accuracy": acc, "epochs": a.epochs, "seconds": time.time() - start, "model": a.model}))


if __name__ == "__main__":
    main()
