#!/usr/bin/env python3
"""Checks the engine against PyTorch on one batch: logits, loss and the gradient
of every parameter (optional; needs python3 with torch and numpy).

It builds the same architecture in PyTorch (sena32, tiny, vgg11..vgg19[_bn] from
torchvision.models where torchvision is installed, vgg11..vgg19[_bn]_compact; the
layouts of layers/models.h), writes its state_dict to W.npz (as torch saves it,
num_batches_tracked included) and a random batch to D.npz, runs

    model-tool run --arch A --input HxWxC --classes K --weights W.npz --data D.npz --out O.npz --eval

and compares O.npz with PyTorch's own forward and backward. Examples:

    python3 scripts/compare_with_torch.py --model-tool build/experiments/model-tool \\
        --arch sena32 --input 32x32x3 --classes 10
    python3 scripts/compare_with_torch.py --model-tool build/experiments/model-tool \\
        --arch vgg11_bn --input 32x32x3 --classes 10 --batch 4 --train

Evaluation mode (the default) uses running batch-norm statistics and no dropout.
--train compares training mode (batch statistics in batch norm); the engine
draws dropout masks from its own generator, so both sides then run with dropout
p = 0 (model-tool --dropout 0). Exit status 0 when every array agrees within
--rtol, 1 otherwise.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

VGG = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


class Vgg(nn.Module):
    """torchvision's VGG layout: features, avgpool, classifier (flatten in forward).
    pool: AdaptiveAvgPool2d(7) as torchvision's; without it (the compact variant)
    the classifier takes C * h * w of the last map."""

    def __init__(self, cfg, bn, h, w, c, classes, pool):
        super().__init__()
        layers = []
        for v in cfg:
            if v == "M":
                pad = 1 if h < 2 or w < 2 else 0  # as layers/models.h: keep a 1-pixel map
                layers.append(nn.MaxPool2d(2, 2, padding=pad))
                h, w = (h + 2 * pad - 2) // 2 + 1, (w + 2 * pad - 2) // 2 + 1
            else:
                layers.append(nn.Conv2d(c, v, 3, padding=1))
                if bn:
                    layers.append(nn.BatchNorm2d(v))
                layers.append(nn.ReLU())
                c = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(7) if pool else nn.Identity()
        if pool:
            h = w = 7
        self.classifier = nn.Sequential(
            nn.Linear(c * h * w, 4096), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(4096, classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def make_model(arch, h, w, c, classes):
    if arch == "sena32":
        def after(s):
            return ((s - 4) - 3) // 2 + 1 - 4
        return nn.Sequential(
            nn.Conv2d(c, 32, 3), nn.ReLU(), nn.Conv2d(32, 32, 3), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Dropout(0.2), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.Dropout(0.2),
            nn.Conv2d(64, 64, 3), nn.ReLU(), nn.Dropout(0.2), nn.Flatten(),
            nn.Linear(64 * after(h) * after(w), 512), nn.Linear(512, classes))
    if arch == "tiny":
        return nn.Sequential(
            nn.Conv2d(c, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(16 * (h // 4) * (w // 4), 32), nn.ReLU(), nn.Linear(32, classes))
    name, _, suffix = arch.partition("_")
    if name.startswith("vgg") and name[3:].isdigit() and int(name[3:]) in VGG:
        if suffix in ("", "bn"):
            try:
                import torchvision  # the real thing where it is installed
                return getattr(torchvision.models, arch)(weights=None, num_classes=classes)
            except ImportError:
                return Vgg(VGG[int(name[3:])], suffix == "bn", h, w, c, classes, pool=True)
        if suffix in ("compact", "bn_compact"):
            return Vgg(VGG[int(name[3:])], suffix == "bn_compact", h, w, c, classes, pool=False)
    sys.exit(f"compare_with_torch: unsupported arch {arch!r} (sena32, tiny, vgg11..vgg19[_bn][_compact])")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-tool", required=True, help="path to the model-tool executable")
    p.add_argument("--arch", default="sena32")
    p.add_argument("--input", default="32x32x3", help="HxWxC")
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train", action="store_true", help="training mode instead of --eval")
    p.add_argument("--device", default="cpu", help="model-tool's --device")
    p.add_argument("--rtol", type=float, default=1e-4, help="|engine - torch| <= rtol * max(1, max|torch|)")
    a = p.parse_args()

    h, w, c = (int(v) for v in a.input.split("x"))
    torch.manual_seed(a.seed)
    model = make_model(a.arch, h, w, c, a.classes).double()
    if any(isinstance(m, nn.BatchNorm2d) for m in model.modules()):
        with torch.no_grad():  # non-trivial running statistics, so that --eval tests them
            model.train()
            for _ in range(3):
                model(torch.randn(a.batch, c, h, w, dtype=torch.float64))
    model.train(a.train)
    if a.train:  # the engine's dropout masks are its own: compare training mode without dropout
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.p = 0.0
    x = torch.randn(a.batch, c, h, w, dtype=torch.float64).float().double()  # float32 values
    y = torch.randint(0, a.classes, (a.batch,))

    with tempfile.TemporaryDirectory() as tmp:
        weights, data, out = (os.path.join(tmp, n) for n in ("W.npz", "D.npz", "O.npz"))
        np.savez(weights, **{k: (v.float() if v.is_floating_point() else v).detach().numpy()
                             for k, v in model.state_dict().items()})
        np.savez(data, x=x.float().numpy(), y=y.numpy())
        # The reference runs in float64 on the float32 values the engine sees.
        with torch.no_grad():
            for v in model.state_dict().values():
                if v.is_floating_point():
                    v.copy_(v.float().double())
        cmd = [a.model_tool, "run", "--arch", a.arch, "--input", a.input, "--classes", str(a.classes),
               "--weights", weights, "--data", data, "--out", out, "--device", a.device]
        cmd += ["--dropout", "0"] if a.train else ["--eval"]
        subprocess.run(cmd, check=True)
        got = dict(np.load(out))

    logits = model(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    reference = {"logits": logits, "loss": loss}
    reference.update({"grad." + n: p.grad for n, p in model.named_parameters()})

    worst = 0.0
    for name, ref in reference.items():
        ref = ref.detach().numpy()
        if name not in got:
            print(f"MISSING {name}")
            worst = float("inf")
            continue
        diff = float(np.max(np.abs(got[name] - ref))) if ref.size else 0.0
        scale = max(1.0, float(np.max(np.abs(ref))) if ref.size else 1.0)
        worst = max(worst, diff / scale)
        print(f"{name:32s} {str(tuple(ref.shape)):22s} max |engine - torch| {diff:.3g}  (relative {diff / scale:.3g})")
    ok = worst <= a.rtol
    print(f"{'OK' if ok else 'MISMATCH'}: worst relative difference {worst:.3g} (rtol {a.rtol})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
