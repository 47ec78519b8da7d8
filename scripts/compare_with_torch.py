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
p = 0 (model-tool --dropout 0). The gradient of the loss with respect to the
input (grad.input) is compared too.

--lora checks the engine's adapters against loralib's formulas (microsoft/LoRA,
loralib/layers.py; written out below, loralib itself is not needed): the model
is task 1 of model-tool's two-task continual model (model-tool run --lora):
every base weight frozen, LoRA on the dense layers

    y = F.linear(x, W, b) + (x @ A.T @ B.T) * s           A (R,IN), B (OUT,R)

and ConvLoRA on the conv layers

    y = conv2d(x, W + (B @ A).view(W.shape) * s, b)       A (R*K, C*K), B (OC*K, R*K)

with s = alpha / R, plus task 1's own BatchNorm2d copies and head. A is
initialised as loralib does (Kaiming-uniform), B non-zero random (loralib's
zeros would leave A without gradient), so every gradient is non-trivial. The
weights go to the engine under its names ("<layer>.adapters.1.A",
"<bn>.tasks.1.weight", "<head>.tasks.1.weight", with task 0's batch norms and
head set to other values, so that reading them instead would show); the
comparison covers logits, loss, dL/dx and the gradient of every A, B and
trainable batch-norm and head tensor. loralib merges W + dW into the weight in
eval mode; that forward is the same function, and unmerged it also gives the
factors' gradients, so both modes use the unmerged formulas. Example:

    python3 scripts/compare_with_torch.py --model-tool build/experiments/model-tool \
        --arch tiny --input 16x16x3 --classes 5 --lora --rank 2 --rank-fc 3 --alpha 4 --train

Each array's figure is max|engine - torch| / max(1, max|torch|), checked against
--rtol; the last line also gives the worst max|engine - torch| / max|torch|,
a scale-free figure (arrays that are zero in torch up to rounding left out).
Exit status 0 when every array agrees within --rtol, 1 otherwise.
"""
import argparse
import math
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


class LoraLinear(nn.Module):
    """loralib's Linear with lora_dropout 0: a frozen nn.Linear plus (x A^T B^T) * s."""

    def __init__(self, linear, r, alpha):
        super().__init__()
        self.weight = nn.Parameter(linear.weight.detach().clone(), requires_grad=False)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone(), requires_grad=False)
        self.lora_A = nn.Parameter(torch.empty(r, linear.in_features))
        self.lora_B = nn.Parameter(torch.empty(linear.out_features, r))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # loralib's A
        nn.init.kaiming_uniform_(self.lora_B, a=math.sqrt(5))  # not loralib's zeros: A must get a gradient
        self.scaling = alpha / r

    def forward(self, x):
        return F.linear(x, self.weight, self.bias) + (x @ self.lora_A.transpose(0, 1) @ self.lora_B.transpose(0, 1)) * self.scaling


class ConvLora(nn.Module):
    """loralib's ConvLoRA (unmerged): conv2d(x, W + (B @ A).view(W.shape) * s, b)."""

    def __init__(self, conv, r, alpha):
        super().__init__()
        k = conv.kernel_size[0]
        self.weight = nn.Parameter(conv.weight.detach().clone(), requires_grad=False)
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach().clone(), requires_grad=False)
        self.stride, self.padding = conv.stride, conv.padding
        self.lora_A = nn.Parameter(torch.empty(r * k, conv.in_channels * k))
        self.lora_B = nn.Parameter(torch.empty(conv.out_channels * k, r * k))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        nn.init.kaiming_uniform_(self.lora_B, a=math.sqrt(5))
        self.scaling = alpha / r

    def forward(self, x):
        w = self.weight + (self.lora_B @ self.lora_A).view(self.weight.shape) * self.scaling
        return F.conv2d(x, w, self.bias, self.stride, self.padding)


def parse_adapt(text):
    """layers::parse_adapt: (conv layers from the last, -1 all; dense; head)."""
    conv, dense, head = 0, False, False
    for token in text.split(","):
        if token == "all":
            conv, dense = -1, True
        elif token == "conv":
            conv = -1
        elif token == "fc":
            dense = True
        elif token == "head":
            head = True
        elif token.startswith("last-") and token[5:].isdigit() and int(token[5:]) > 0:
            conv = int(token[5:])
        elif token != "none":
            sys.exit(f"compare_with_torch: bad --adapt token {token!r}")
    return conv, dense, head


def make_lora_task(model, a):
    """Turns `model` (already double, batch-norm statistics set) into task 1 of
    model-tool's two-task LoRA model, in place. Returns its engine names:
    {PyTorch name: engine name} and task 0's tensors, {engine name: tensor}."""
    conv_layers, dense, head_adapter = parse_adapt(a.adapt)
    modules = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d))]
    convs = [n for n, m in modules if isinstance(m, nn.Conv2d)]
    head = [n for n, m in modules if isinstance(m, nn.Linear)][-1]
    adapted_convs = convs if conv_layers < 0 else convs[len(convs) - conv_layers:]
    rename, task0 = {}, {}

    def replace(path, new):
        parent, _, leaf = path.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, leaf, new)

    def other_values(t):  # task 0's copy: any other values will do
        return (t * 0.5 + 0.25).detach().clone() if t.is_floating_point() else t.clone()

    for path, m in modules:
        if isinstance(m, nn.Conv2d) and path in adapted_convs:
            replace(path, ConvLora(m, a.rank, a.alpha))
            rename.update({f"{path}.lora_A": f"{path}.adapters.1.A", f"{path}.lora_B": f"{path}.adapters.1.B"})
        elif isinstance(m, nn.Linear) and path != head and dense:
            replace(path, LoraLinear(m, a.rank_fc, a.alpha))
            rename.update({f"{path}.lora_A": f"{path}.adapters.1.A", f"{path}.lora_B": f"{path}.adapters.1.B"})
        elif isinstance(m, nn.BatchNorm2d) or path == head:
            for leaf, t in m.state_dict().items():  # task 0's copy keeps the plain names
                task0[f"{path}.{leaf}"] = other_values(t)
            if path == head and head_adapter:
                block = LoraLinear(m, a.rank_fc, a.alpha)
                block.weight.requires_grad_(True)  # task 1's own head block trains along with its adapter
                block.bias.requires_grad_(True)
                replace(path, block)
                rename.update({f"{path}.lora_A": f"{path}.tasks.1.adapters.1.A",
                               f"{path}.lora_B": f"{path}.tasks.1.adapters.1.B"})
            for leaf in model.get_submodule(path).state_dict():
                rename.setdefault(f"{path}.{leaf}", f"{path}.tasks.1.{leaf}")
    for name, p in model.named_parameters():
        if name not in rename:
            p.requires_grad_(False)  # the shared network: frozen
    return rename, task0


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
    p.add_argument("--lora", action="store_true", help="task 1 with LoRA / ConvLoRA adapters (model-tool run --lora)")
    p.add_argument("--adapt", default="all", help="with --lora: where adapters go (model-tool --adapt)")
    p.add_argument("--rank", type=int, default=2, help="with --lora: ConvLoRA rank")
    p.add_argument("--rank-fc", type=int, default=4, help="with --lora: LoRA rank of dense layers")
    p.add_argument("--alpha", type=float, default=4.0, help="with --lora: scaling alpha / rank")
    a = p.parse_args()

    h, w, c = (int(v) for v in a.input.split("x"))
    torch.manual_seed(a.seed)
    model = make_model(a.arch, h, w, c, a.classes).double()
    if any(isinstance(m, nn.BatchNorm2d) for m in model.modules()):
        with torch.no_grad():  # non-trivial running statistics, so that --eval tests them
            model.train()
            for _ in range(3):
                model(torch.randn(a.batch, c, h, w, dtype=torch.float64))
    rename, task0 = make_lora_task(model, a) if a.lora else ({}, {})
    model.double()  # the adapters' new tensors too
    model.train(a.train)
    if a.train:  # the engine's dropout masks are its own: compare training mode without dropout
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.p = 0.0
    x = torch.randn(a.batch, c, h, w, dtype=torch.float64).float().double()  # float32 values
    y = torch.randint(0, a.classes, (a.batch,))

    with tempfile.TemporaryDirectory() as tmp:
        weights, data, out = (os.path.join(tmp, n) for n in ("W.npz", "D.npz", "O.npz"))
        state = {rename.get(k, k): v for k, v in model.state_dict().items()}
        state.update(task0)
        np.savez(weights, **{k: (v.float() if v.is_floating_point() else v).detach().numpy()
                             for k, v in state.items()})
        np.savez(data, x=x.float().numpy(), y=y.numpy())
        # The reference runs in float64 on the float32 values the engine sees.
        with torch.no_grad():
            for v in model.state_dict().values():
                if v.is_floating_point():
                    v.copy_(v.float().double())
        cmd = [a.model_tool, "run", "--arch", a.arch, "--input", a.input, "--classes", str(a.classes),
               "--weights", weights, "--data", data, "--out", out, "--device", a.device]
        cmd += ["--dropout", "0"] if a.train else ["--eval"]
        if a.lora:
            cmd += ["--lora", "--adapt", a.adapt, "--rank", str(a.rank), "--rank-fc", str(a.rank_fc),
                    "--alpha", repr(a.alpha)]
        subprocess.run(cmd, check=True)
        got = dict(np.load(out))

    x.requires_grad_(True)
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    reference = {"logits": logits, "loss": loss, "grad.input": x.grad}
    reference.update({"grad." + rename.get(n, n): p.grad for n, p in model.named_parameters() if p.requires_grad})

    worst = worst_own = 0.0
    for name in sorted(set(got) - set(reference)):
        print(f"EXTRA {name}: the engine trains a tensor the reference does not")
        worst = float("inf")
    for name, ref in reference.items():
        ref = ref.detach().numpy()
        if name not in got:
            print(f"MISSING {name}")
            worst = float("inf")
            continue
        diff = float(np.max(np.abs(got[name] - ref))) if ref.size else 0.0
        largest = float(np.max(np.abs(ref))) if ref.size else 0.0
        scale = max(1.0, largest)
        worst = max(worst, diff / scale)
        if largest > 1e-12:
            own = f"to max|torch| {largest:.3g}: {diff / largest:.3g}"
            worst_own = max(worst_own, diff / largest)
        else:  # e.g. a conv bias before training-mode batch norm: zero up to rounding
            own = f"torch's values are zero up to rounding, {largest:.3g}"
        print(f"{name:32s} {str(tuple(ref.shape)):22s} max |engine - torch| {diff:.3g}  (relative {diff / scale:.3g}; "
              f"{own})")
    ok = worst <= a.rtol
    print(f"{'OK' if ok else 'MISMATCH'}: worst relative difference {worst:.3g} (rtol {a.rtol}); "
          f"relative to each array's own largest value {worst_own:.3g} (arrays zero in torch left out)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
