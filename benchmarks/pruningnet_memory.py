"""Memory of a PruningNet: parameters and peak RSS per generator (MetaPruning's ~776M for ResNet-50).

Each configuration runs in its own process: build the PruningNet, then one SGD (momentum) training
step on a random candidate, and report the peak resident set size (``ru_maxrss``). The official
``mlp`` generator on ResNet-50 is counted, not built, unless ``--build-mlp-resnet50`` is given
(its parameters alone take ~3 GB, plus as much again for gradients and momentum).

    nice -n 5 .venv/bin/python benchmarks/pruningnet_memory.py -o benchmarks/results/pruningnet_memory.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

CONFIGS = [  # (space, generator, batch, build)
    ("mobilenet_v2-32", "lowrank", 64, True),
    ("mobilenet_v2-32", "mlp", 64, True),
    ("resnet50-224", "lowrank", 2, True),
    ("resnet50-224", "mlp", 2, False),
]


def measure(space_name: str, generator: str, batch: int, build: bool) -> dict:
    import random
    import resource

    import torch
    import torch.nn.functional as F

    from nas_prune.pruningnet import ChannelIndex, PruningNet
    from nas_prune.space import ChannelSpace

    torch.set_num_threads(1)
    space = ChannelSpace.load(f"search_spaces/{space_name}.json")
    base = space.build_model()
    base_params = sum(p.numel() for p in base.parameters())
    generated = sum(m.weight.numel() for n, m in base.named_modules()
                    if n in space.layers and space.layers[n].kind in ("conv", "linear"))
    result = {"space": space.id, "generator": generator, "hidden": 32, "rank": 4, "base_params": base_params,
              "generated_weights": generated}
    if not build:  # count the official generator exactly without allocating it
        index = ChannelIndex.build(space, base)
        total = base_params - generated  # shared biases, norms and loose parameters
        for name, info in space.layers.items():
            if info.kind in ("conv", "linear"):
                outs, ins = index.genes_of(name)
                k = len(dict.fromkeys(outs + ins)) or 1
                numel = dict(base.named_modules())[name].weight.numel()
                total += k * 32 + 32 + 32 * numel + numel
        result.update({"pnet_params": total, "params_per_weight": total / generated, "built": False,
                       "param_gib": total * 4 / 2**30, "train_state_gib_estimate": 3 * total * 4 / 2**30})
        return result
    del base
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    pnet = PruningNet(space, generator=generator).train()
    n = sum(p.numel() for p in pnet.parameters())
    build_s = time.perf_counter() - start
    rss_build = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    opt = torch.optim.SGD(pnet.parameters(), lr=0.01, momentum=0.9)
    x = space.example_input(batch)
    y = torch.randint(0, space.model["num_classes"], (batch,))
    start = time.perf_counter()
    for step in range(2):  # the second step has momentum buffers allocated
        loss = F.cross_entropy(pnet(x, space.sample(random.Random(step))), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    step_s = (time.perf_counter() - start) / 2
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result.update({"pnet_params": n, "params_per_weight": n / generated, "built": True, "batch": batch,
                   "build_seconds": build_s, "train_step_seconds": step_s,
                   "rss_before_mib": rss0 / 1024, "rss_after_build_mib": rss_build / 1024,
                   "peak_rss_train_mib": rss_peak / 1024})
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", default="benchmarks/results/pruningnet_memory.json")
    ap.add_argument("--build-mlp-resnet50", action="store_true")
    ap.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        space, gen, batch, build = args.one
        print(json.dumps(measure(space, gen, int(batch), build == "1")))
        return
    from nas_prune.files import write_json

    rows = []
    for space, gen, batch, build in CONFIGS:
        build = build or (args.build_mlp_resnet50 and space.startswith("resnet50"))
        proc = subprocess.run([sys.executable, __file__, "--one", space, gen, str(batch), "1" if build else "0"],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            rows.append({"space": space, "generator": gen, "error": proc.stderr.strip().splitlines()[-1]})
        else:
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    write_json(args.output, {"benchmark": "pruningnet_memory", "threads": 1, "date": time.strftime("%Y-%m-%d"),
                             "rows": rows})


if __name__ == "__main__":
    main()
