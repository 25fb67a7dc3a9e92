"""Write Fashion-MNIST as a folder of JPEG files, the layout users bring: ``root/train/<class>/*.jpg``
and ``root/val/<class>/*.jpg`` (ImageNet's), at a realistic size (default 256 x 256, RGB, quality 90).

It stands in for a user's own photos in the 224-pixel examples and in ``benchmarks/data_throughput.py``::

    python examples/image_folder/fashion_mnist_jpeg.py runs/fashion-jpeg --train 6000 --val 1000
    nas-prune run --data imagefolder:runs/fashion-jpeg --input-size 224 --resize 256 ...

Reads the Debian package ``dataset-fashion-mnist`` (nothing is downloaded). Re-running with the same
arguments keeps the files already written (it is resumable).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"]


def write_jpeg_folder(root: str | Path, *, train: int = 6000, val: int = 1000, size: int = 256,
                      quality: int = 90, seed: int = 0) -> dict[str, int]:
    """Write ``train`` training and ``val`` validation images (class-balanced random subsets).

    Training images come from Fashion-MNIST's training split, validation images from its test split.

    Returns:
        Images per split (what is on disk afterwards).
    """
    import torch
    from PIL import Image

    from nas_prune.data import fashion_mnist_arrays

    root = Path(root)
    counts = {}
    for split, n, source in (("train", train, "train"), ("val", val, "test")):
        x, y = fashion_mnist_arrays(split=source)
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(y), generator=g)[:n]
        for i in idx.tolist():
            path = root / split / CLASSES[int(y[i])] / f"{split}_{i:05d}.jpg"
            if path.exists():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            img = Image.fromarray(x[i].numpy()).resize((size, size), Image.BILINEAR).convert("RGB")
            tmp = path.with_suffix(".tmp")
            img.save(tmp, format="JPEG", quality=quality)
            tmp.replace(path)
        counts[split] = sum(1 for _ in (root / split).rglob("*.jpg"))
    return counts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root", type=Path)
    p.add_argument("--train", type=int, default=6000)
    p.add_argument("--val", type=int, default=1000)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--quality", type=int, default=90)
    a = p.parse_args()
    print(json.dumps(write_jpeg_folder(a.root, train=a.train, val=a.val, size=a.size, quality=a.quality)))


if __name__ == "__main__":
    main()
