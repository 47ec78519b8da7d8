#!/usr/bin/env python3
"""Moves VGG weights between torchvision and this engine (optional; needs torch,
torchvision and numpy: apt-get install python3-torch python3-torchvision).

export: a torchvision vggNN[_bn] state_dict -> .npz, the names and shapes that
        `model-tool run --weights` and `continual --init` load as they are
        (num_batches_tracked included):

    python3 scripts/export_torchvision.py export --arch vgg19_bn --out vgg19_bn-imagenet.npz

    --weights imagenet   torchvision's IMAGENET1K_V1 weights (1000 classes); downloaded
                         into torch's hub cache when absent, so run it once on a machine
                         with internet and copy the .npz (or the cache) over;
    --weights random     torchvision's own random initialisation (seeded by --seed);
    --weights auto       (default) imagenet when torch's cache already holds the file,
                         random otherwise; it says which. Nothing is downloaded.

import: an engine .npz of a torchvision-layout model (e.g. `continual` or `model-tool`
        weights) -> torchvision's model, loaded with load_state_dict(strict=True); the
        engine keeps no num_batches_tracked, so it is set to 0 for each batch norm.
        --out saves the model's state_dict with torch.save.

    python3 scripts/export_torchvision.py import --arch vgg19_bn --npz engine.npz --out vgg19_bn.pt

The class count is the file's (its last Linear) on import and --classes on export
(1000 with ImageNet weights). Files are written to a temporary name and renamed.
Exit status 0 on success, 1 on any error (named on stderr).
"""
import argparse
import os
import sys

import numpy as np
import torch
import torchvision

ARCHS = [f"vgg{d}{s}" for d in (11, 13, 16, 19) for s in ("", "_bn")]


def imagenet_weights(arch):
    """torchvision's IMAGENET1K_V1 weights enum of `arch`, e.g. VGG19_BN_Weights.IMAGENET1K_V1."""
    return getattr(torchvision.models, arch.upper() + "_Weights").IMAGENET1K_V1


def cached_file(weights):
    """Where torch's hub cache keeps `weights` (it may not exist)."""
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(weights.url))


def write_atomically(path, save):
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def export(a):
    weights = imagenet_weights(a.arch)
    use_imagenet = a.weights == "imagenet" or (a.weights == "auto" and os.path.exists(cached_file(weights)))
    if use_imagenet:
        if a.classes not in (None, 1000):
            sys.exit(f"export_torchvision: --classes {a.classes}: ImageNet weights have 1000 classes")
        model = getattr(torchvision.models, a.arch)(weights=weights)
        source = f"ImageNet weights ({weights}, {cached_file(weights)})"
    else:
        torch.manual_seed(a.seed)
        model = getattr(torchvision.models, a.arch)(weights=None, num_classes=a.classes or 1000)
        source = f"random weights (torchvision's initialisation, seed {a.seed})"
        if a.weights == "auto":
            source += f"; no ImageNet weights in torch's cache ({cached_file(weights)})"
    state = {name: t.detach().cpu().numpy() for name, t in model.state_dict().items()}

    def save(tmp):
        with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to the name
            np.savez(f, **state)

    write_atomically(a.out, save)
    classes = state[list(state)[-1]].shape[0]
    print(f"wrote {a.out}: {a.arch}, {classes} classes, {len(state)} arrays, "
          f"{sum(v.size for v in state.values() if v.dtype != np.int64):,} parameters and statistics; {source}")


def import_npz(a):
    with np.load(a.npz) as f:
        arrays = {name: f[name] for name in f.files}
    heads = [name for name, v in arrays.items() if name.endswith(".weight") and v.ndim == 2]
    if not heads:
        sys.exit(f"export_torchvision: {a.npz}: no Linear weight (2-D '*.weight') in the file")
    classes = arrays[heads[-1]].shape[0]
    model = getattr(torchvision.models, a.arch)(weights=None, num_classes=classes)
    state = {name: torch.from_numpy(np.ascontiguousarray(v)) for name, v in arrays.items()}
    added = 0
    for name, t in model.state_dict().items():
        if name.endswith(".num_batches_tracked") and name not in state:
            state[name] = torch.zeros_like(t)
            added += 1
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        sys.exit(f"export_torchvision: {a.npz} does not fit torchvision's {a.arch}({classes} classes): {e}")
    print(f"loaded {a.npz} into torchvision's {a.arch}(num_classes={classes}) with strict=True: "
          f"{len(arrays)} arrays, num_batches_tracked set to 0 for {added} batch norms")
    if a.out:
        write_atomically(a.out, lambda tmp: torch.save(model.state_dict(), tmp))
        print(f"wrote {a.out} (torch.save of the state_dict)")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export", help="torchvision -> .npz")
    e.add_argument("--arch", required=True, choices=ARCHS)
    e.add_argument("--out", required=True, help=".npz to write")
    e.add_argument("--weights", choices=("auto", "imagenet", "random"), default="auto")
    e.add_argument("--classes", type=int, help="classes of the head (random weights; default 1000)")
    e.add_argument("--seed", type=int, default=0, help="torch.manual_seed for random weights")
    i = sub.add_parser("import", help=".npz -> torchvision (strict)")
    i.add_argument("--arch", required=True, choices=ARCHS)
    i.add_argument("--npz", required=True, help="engine .npz of the model's state_dict")
    i.add_argument("--out", help="optional .pt to write with torch.save")
    a = p.parse_args()
    if a.command == "export" and a.classes is not None and a.classes <= 0:
        p.error(f"--classes must be positive, got {a.classes}")
    try:
        export(a) if a.command == "export" else import_npz(a)
    except (OSError, ValueError, KeyError) as err:
        sys.exit(f"export_torchvision: {err}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
