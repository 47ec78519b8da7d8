#!/usr/bin/env python3
"""Optional: the same small-CNN training step as `bench` (issue 3), in PyTorch's
CPU build, for a speed comparison on the same machine and thread count.

    python3 scripts/torch_bench.py [--threads N] [--reps R]

Needs Debian's python3-torch (apt-get install python3-torch); nothing in the
build or the tests uses it.
"""
import argparse
import time

import torch
import torch.nn as nn


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="0: all cores")
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(3)
    # conv3x3(3->32) relu conv3x3(32->32) relu maxpool(3, s2) conv3x3(32->64) relu
    # conv3x3(64->64) relu flatten linear(5184->512) linear(512->10), as bench.cpp.
    model = nn.Sequential(
        nn.Conv2d(3, 32, 3), nn.ReLU(), nn.Conv2d(32, 32, 3), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.Conv2d(64, 64, 3), nn.ReLU(), nn.Flatten(),
        nn.Linear(5184, 512), nn.Linear(512, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(args.batch, 3, 32, 32) * 2 - 1
    y = torch.randint(0, 10, (args.batch,))
    loss_fn = nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()

    step()  # warm-up
    best = float("inf")
    for _ in range(args.reps):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads: small CNN training step "
          f"(batch {args.batch}, Adam): {args.batch / best:.0f} images/s ({best * 1e3:.1f} ms/step)")


if __name__ == "__main__":
    main()
