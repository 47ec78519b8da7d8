#!/usr/bin/env python3
"""Optional: the training steps of `bench` in PyTorch's CPU build, for a speed
comparison on the same machine and thread count.

    python3 scripts/torch_bench.py [--threads N] [--reps R] [--network small_cnn]
    python3 scripts/torch_bench.py --serve --threads N   (driven by bench --compare-torch)

Networks (32x32x3 input, 10 classes, Adam 1e-3, cross-entropy): small_cnn (as
bench.cpp's), sena32, vgg19_bn (torchvision's layout, with its 7x7 average
pool) and vgg19_bn_compact (no average pool), the last three as
scripts/compare_with_torch.py builds them.

--serve first says "ready torch VERSION threads N baseline_rss_kib K", K being
the resident set after the imports, before any network is built; then it
reads lines "NETWORK BATCH REPS" and answers each "SECONDS PEAK_KIB": the
seconds of the fastest of REPS steps and the peak resident set during one more
step (Linux's VmHWM, reset just before it, once malloc has given back what
earlier steps freed), -1 where unknown (experiments/torch_peer.h). Needs
Debian's python3-torch (apt-get install python3-torch); nothing in the build
or the tests uses it.
"""
import argparse
import ctypes
import gc
import os
import sys
import time

try:
    import torch
    import torch.nn as nn
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from compare_with_torch import make_model
except ImportError as e:
    if "--serve" in sys.argv:
        print(f"unavailable: {e}", flush=True)
        sys.exit(0)
    raise
try:
    # make_model builds vgg19_bn with torchvision where it is installed: imported
    # here, its libraries count in the baseline, not in a step's peak.
    import torchvision  # noqa: F401
except ImportError:
    pass

NETWORKS = ("small_cnn", "sena32", "vgg19_bn", "vgg19_bn_compact")


def make_network(name):
    if name == "small_cnn":
        # conv3x3(3->32) relu conv3x3(32->32) relu maxpool(3, s2) conv3x3(32->64) relu
        # conv3x3(64->64) relu flatten linear(5184->512) linear(512->10), as bench.cpp.
        return nn.Sequential(
            nn.Conv2d(3, 32, 3), nn.ReLU(), nn.Conv2d(32, 32, 3), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.Conv2d(64, 64, 3), nn.ReLU(), nn.Flatten(),
            nn.Linear(5184, 512), nn.Linear(512, 10))
    return make_model(name, 32, 32, 3, 10)


def status_kib(field):
    """A field of /proc/self/status in KiB (VmRSS: resident now, VmHWM: its peak), -1 where unknown."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def release_freed_memory():
    """Gives the system back the freed memory that malloc keeps (glibc), so that a
    peak measured next holds what is live, not what earlier networks freed."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def reset_peak():
    """Starts a new VmHWM from the resident set now (Linux >= 4.0); False where refused."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


class Step:
    """One network's training step on fixed random data: forward, loss, backward, Adam."""

    def __init__(self, name, batch):
        torch.manual_seed(3)
        self.model = make_network(name)
        self.model.train()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.x = torch.rand(batch, 3, 32, 32) * 2 - 1
        self.y = torch.randint(0, 10, (batch,))
        self.loss_fn = nn.CrossEntropyLoss()
        self()  # warm-up

    def __call__(self):
        self.optimizer.zero_grad()
        self.loss_fn(self.model(self.x), self.y).backward()
        self.optimizer.step()

    def best_seconds(self, reps):
        best = float("inf")
        for _ in range(reps):
            start = time.perf_counter()
            self()
            best = min(best, time.perf_counter() - start)
        return best

    def peak_kib(self):
        """Peak RSS of the whole process during one more step, in KiB (-1: unknown)."""
        release_freed_memory()
        if not reset_peak():
            return -1
        self()
        return status_kib("VmHWM")


def serve():
    print(f"ready torch {torch.__version__} threads {torch.get_num_threads()} "
          f"baseline_rss_kib {status_kib('VmRSS')}", flush=True)
    key, step = None, None
    for line in sys.stdin:
        try:
            name, batch, reps = line.split()
            if name not in NETWORKS:
                raise ValueError(f"unknown network {name!r} (expected one of {', '.join(NETWORKS)})")
            if int(reps) < 1:
                raise ValueError(f"REPS must be >= 1, not {reps}")
            if (name, int(batch)) != key:
                # One network at a time: the previous one's weights and Adam
                # state must not count in this one's peak.
                key, step = None, None
                gc.collect()
                step, key = Step(name, int(batch)), (name, int(batch))
            print(f"{step.best_seconds(int(reps)):.9g} {step.peak_kib()}", flush=True)
        except Exception as e:  # told to bench, which names the network
            print(f"error: {e}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="0: all cores")
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--network", default="small_cnn", choices=NETWORKS)
    parser.add_argument("--serve", action="store_true", help="answer bench --compare-torch's requests")
    args = parser.parse_args()
    if args.threads < 0 or args.reps < 1 or args.batch < 1:
        parser.error("--threads must be >= 0, --reps and --batch >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.serve:
        serve()
        return
    baseline_kib = status_kib("VmRSS")
    step = Step(args.network, args.batch)
    best, peak_kib = step.best_seconds(args.reps), step.peak_kib()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads: {args.network} training step "
          f"(batch {args.batch}, Adam): {args.batch / best:.0f} images/s ({best * 1e3:.1f} ms/step)")
    if peak_kib >= 0 and baseline_kib >= 0:
        print(f"peak RSS of a step {peak_kib / 1024:.0f} MiB, {(peak_kib - baseline_kib) / 1024:.0f} above "
              f"the {baseline_kib / 1024:.0f} MiB after import")


if __name__ == "__main__":
    main()
