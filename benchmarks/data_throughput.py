"""Throughput of the image-folder data path at 224 px, beside torchvision's stock ImageFolder + DataLoader.

On a folder of JPEG files (Fashion-MNIST written at 256 x 256 RGB, quality 90, by
``examples/image_folder/fashion_mnist_jpeg.py``; it is written first if missing):

- ``images_per_s``: training batches per second x batch size, steady state (the first batch, which
  starts the workers, is not counted), at 0, 1 and 2 worker processes, for nas-prune's path
  (``load_data("imagefolder:...")`` + ``batches``: torchvision decoder, v2 transforms on uint8,
  normalised per batch) and for torchvision's stock recipe (``ImageFolder`` with PIL,
  ``RandomResizedCrop(224)``, ``RandomHorizontalFlip``, ``ToTensor``, ``Normalize``; a
  ``DataLoader`` with the same workers, batch size and shuffle). Paths and worker counts are
  interleaved and repeated; the medians are reported.
- ``decode_limit_per_s``: JPEG decoding alone (torchvision's libjpeg-turbo decoder, no transform)
  in as many processes as the machine has cores: the physical limit of any data path on these
  files and cores; ``share_of_decode_limit`` is nas-prune's 2-worker figure over it.
- ``data_wait_share``: mobilenet_v2 (10 classes) trained at 224, batch 32, SGD, on the CPU with the
  default workers: the share of each step's wall time spent waiting for the next batch.

    nice -n 5 .venv/bin/python benchmarks/data_throughput.py -o benchmarks/results/data_throughput.json

Writes the JSON after every repeat (a killed run keeps what it measured; a re-run starts over).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "image_folder"))

from fashion_mnist_jpeg import write_jpeg_folder  # noqa: E402

from nas_prune.data import batches, default_workers, load_data  # noqa: E402
from nas_prune.files import write_json  # noqa: E402
from nas_prune.on_device import machine_info  # noqa: E402

MEAN, STD = [0.286] * 3, [0.353] * 3


def _rate(it: Iterator[Any], n_batches: int, batch_size: int) -> float:
    """Images per second over ``n_batches`` batches after the first one (worker start-up)."""
    next(it)
    start = time.perf_counter()
    for _ in range(n_batches):
        next(it)
    return n_batches * batch_size / (time.perf_counter() - start)


def nas_prune_batches(root: Path, workers: int, batch_size: int, seed: int) -> Iterator[Any]:
    from nas_prune.data import Preprocess

    data = load_data(f"imagefolder:{root}", input_size=224, workers=workers, augment="standard",
                     preprocess=Preprocess(tuple(MEAN), tuple(STD)))
    while True:
        yield from batches(data.train, batch_size, shuffle=True, seed=seed, drop_last=True)
        seed += 1


def torchvision_batches(root: Path, workers: int, batch_size: int, seed: int) -> Iterator[Any]:
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip(),
                             transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    ds = datasets.ImageFolder(str(root / "train"), transform=tf)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers, drop_last=True,
                        persistent_workers=workers > 0, generator=torch.Generator().manual_seed(seed))
    while True:
        yield from loader


def decode_limit(root: Path, processes: int, n_images: int) -> float:
    """Images per second of decoding alone, in ``processes`` DataLoader workers."""
    from torch.utils.data import DataLoader, Dataset

    from nas_prune.data import decode_image_file

    files = sorted(str(p) for p in (root / "train").rglob("*.jpg"))[:n_images]

    class Decode(Dataset):
        def __len__(self) -> int:
            return len(files)

        def __getitem__(self, i: int) -> torch.Tensor:
            return decode_image_file(files[i])

    loader = DataLoader(Decode(), batch_size=32, num_workers=processes)
    it = iter(loader)
    next(it)
    start, n = time.perf_counter(), 0
    for x in it:
        n += len(x)
    return n / (time.perf_counter() - start)


def data_wait_share(root: Path, steps: int, batch_size: int) -> dict[str, float]:
    """mobilenet_v2 at 224 trained on the CPU with the default workers: the share of steps spent waiting."""
    import torchvision

    data = load_data(f"imagefolder:{root}", input_size=224, augment="standard")
    model = torchvision.models.mobilenet_v2(num_classes=10)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    it = batches(data.train, batch_size, shuffle=True, seed=0, drop_last=True)
    waits, totals = [], []
    for step in range(steps + 2):
        t0 = time.perf_counter()
        x, y = next(it)
        t1 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        t2 = time.perf_counter()
        if step >= 2:  # the first batches start the workers and warm the model up
            waits.append(t1 - t0)
            totals.append(t2 - t0)
    return {"data_wait_share": sum(waits) / sum(totals), "step_seconds_median": statistics.median(totals),
            "wait_seconds_median": statistics.median(waits), "workers": data.train.workers, "steps": steps}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=ROOT / "runs" / "fashion-jpeg")
    ap.add_argument("--train", type=int, default=6000, help="JPEG files written for training (if missing)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--batches", type=int, default=30, help="timed batches per measurement (after the first)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", default="0,1,2")
    ap.add_argument("--wait-steps", type=int, default=12)
    ap.add_argument("-o", "--output", type=Path, default=ROOT / "benchmarks" / "results" / "data_throughput.json")
    args = ap.parse_args()
    counts = write_jpeg_folder(args.root, train=args.train, val=1000)
    workers = [int(w) for w in args.workers.split(",")]
    paths: dict[str, Callable[..., Iterator[Any]]] = {"nas_prune": nas_prune_batches,
                                                        "torchvision": torchvision_batches}
    raw: dict[str, dict[str, list[float]]] = {p: {str(w): [] for w in workers} for p in paths}
    decode: list[float] = []
    result: dict[str, Any] = {}

    def save(done: int) -> None:
        med = {p: {w: statistics.median(v) for w, v in by_w.items() if v} for p, by_w in raw.items()}
        result.update({
            "benchmark": "data_throughput",
            "command": "nice -n 5 .venv/bin/python benchmarks/data_throughput.py " + " ".join(sys.argv[1:]),
            "images_per_s": med,
            "decode_limit_per_s": statistics.median(decode) if decode else None,
            "share_of_decode_limit": (med["nas_prune"].get("2", 0) / statistics.median(decode)) if decode else None,
            "speedup_vs_torchvision": {w: med["nas_prune"][w] / med["torchvision"][w]
                                       for w in med["nas_prune"] if w in med["torchvision"]},
            "nas_prune_2_workers_over_0": (med["nas_prune"]["2"] / med["nas_prune"]["0"])
            if {"0", "2"} <= set(med["nas_prune"]) else None,
            "repeats_done": done, "raw_images_per_s": raw, "raw_decode_per_s": decode,
            "files": counts, "image": "256 x 256 RGB JPEG, quality 90 (Fashion-MNIST upscaled)",
            "batch_size": args.batch_size, "timed_batches": args.batches, "default_workers": default_workers(),
            "machine": machine_info(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        })
        write_json(args.output, result)

    torch.set_num_threads(1)  # the loaders' main process only collates and normalises
    for r in range(args.repeats):
        for w in workers:
            order = list(paths) if r % 2 == 0 else list(reversed(paths))
            for name in order:
                rate = _rate(paths[name](args.root, w, args.batch_size, seed=r), args.batches, args.batch_size)
                raw[name][str(w)].append(rate)
                print(f"repeat {r} workers {w} {name}: {rate:.0f} images/s", flush=True)
        decode.append(decode_limit(args.root, default_workers(), n_images=(args.batches + 1) * args.batch_size * 2))
        print(f"repeat {r} decode limit: {decode[-1]:.0f} images/s", flush=True)
        save(r + 1)
    torch.set_num_threads(default_workers())
    result["training_step"] = data_wait_share(args.root, args.wait_steps, args.batch_size)
    result["data_wait_share"] = result["training_step"]["data_wait_share"]
    print(f"data wait share: {result['data_wait_share']:.3f}", flush=True)
    save(args.repeats)


if __name__ == "__main__":
    main()
