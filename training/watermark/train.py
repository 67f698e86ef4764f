"""Train the watermark-opacity network and export it to ONNX.

    python training/watermark/train.py --photos DIR --fonts DIR --minutes 8 --out markalpha.onnx

The network reads a marked photo and returns, per pixel, the mark's opacity ``alpha`` and
colour ``W`` (4 channels, 0..1); the engine inverts the blend with them. The loss scores the
opacity, the premultiplied colour, and the photo the inversion gives back. Needs PyTorch
(not a dependency of the platform; the exported ONNX file is what ships).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from marks import MarkMaker, load_fonts, load_photos
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

# Input sides must be a multiple of this (four stride-2 stages).
MULTIPLE = 16


def conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class MarkAlphaNet(nn.Module):
    """A small U-Net: features from half resolution down to 1/16, a light full-size head."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w = width
        self.stem = conv(3, w // 2)
        self.down1 = nn.Sequential(conv(w // 2, w, 2), conv(w, w))  # 1/2
        self.down2 = nn.Sequential(conv(w, 2 * w, 2), conv(2 * w, 2 * w))  # 1/4
        self.down3 = nn.Sequential(conv(2 * w, 4 * w, 2), conv(4 * w, 4 * w))  # 1/8
        self.down4 = nn.Sequential(
            conv(4 * w, 4 * w, 2), conv(4 * w, 4 * w, dilation=2), conv(4 * w, 4 * w, dilation=4)
        )  # 1/16
        self.up3 = conv(8 * w, 2 * w)
        self.up2 = conv(4 * w, w)
        self.up1 = conv(2 * w, w)
        self.head = nn.Sequential(conv(w + w // 2 + 3, w // 2), nn.Conv2d(w // 2, 4, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = self.stem(x)
        s1 = self.down1(s0)
        s2 = self.down2(s1)
        s3 = self.down3(s2)
        s4 = self.down4(s3)
        u3 = self.up3(torch.cat([_up(s4), s3], 1))
        u2 = self.up2(torch.cat([_up(u3), s2], 1))
        u1 = self.up1(torch.cat([_up(u2), s1], 1))
        out = self.head(torch.cat([_up(u1), s0, x], 1))
        return torch.sigmoid(out)


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class Samples(IterableDataset):
    def __init__(self, photos: Path, fonts: Path, size: int, long_side: int, blank: float) -> None:
        self.photos_dir, self.fonts_dir, self.size, self.long_side = photos, fonts, size, long_side
        self.blank = blank

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        seed = (info.id if info else 0) * 7919 + int.from_bytes(os.urandom(4), "little")
        rng = np.random.default_rng(seed)
        latin, cjk = load_fonts(self.fonts_dir)
        photos = load_photos(self.photos_dir, self.long_side)
        maker = MarkMaker(photos, latin, cjk, self.size, self.blank)
        while True:
            marked, alpha, color, clean = maker.sample(rng)
            yield (
                torch.from_numpy(marked).permute(2, 0, 1),
                torch.from_numpy(alpha)[None],
                torch.from_numpy(color).permute(2, 0, 1),
                torch.from_numpy(clean).permute(2, 0, 1),
            )


def loss_terms(
    pred: torch.Tensor,
    marked: torch.Tensor,
    alpha: torch.Tensor,
    color: torch.Tensor,
    clean: torch.Tensor,
) -> dict[str, torch.Tensor]:
    a_hat, w_hat = pred[:, :1], pred[:, 1:]
    region = (alpha > 0.01).float()
    l_alpha = (a_hat - alpha).abs().mean() + ((a_hat - alpha).abs() * region).sum() / (
        region.sum() + 1.0
    )
    l_color = ((a_hat * w_hat - alpha * color).abs()).mean() * 3
    restored = (marked - a_hat * w_hat) / (1 - a_hat).clamp(min=0.15)
    keep = (alpha < 0.85).float()
    l_restore = ((restored.clamp(0, 1) - clean).abs() * keep).mean() * 3
    return {"alpha": l_alpha, "color": l_color, "restore": l_restore}


def export(model: nn.Module, path: Path) -> str:
    model = model.float().eval().cpu()
    dummy = torch.rand(1, 3, 64, 96)
    torch.onnx.export(
        model,
        (dummy,),
        str(path),
        input_names=["image"],
        output_names=["alpha_color"],
        dynamic_axes={"image": {0: "n", 2: "h", 3: "w"}, "alpha_color": {0: "n", 2: "h", 3: "w"}},
        opset_version=17,
        dynamo=False,
    )
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=Path, required=True)
    ap.add_argument("--fonts", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--minutes", type=float, default=8.0)
    ap.add_argument("--batch", type=int, default=48)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    ap.add_argument("--resume", type=Path, help="start from these weights (a .pt file)")
    ap.add_argument("--report", type=int, default=400)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--blank", type=float, default=0.1, help="share of samples with no mark")
    args = ap.parse_args()

    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = MarkAlphaNet(args.width)
    if args.resume:
        model.load_state_dict(torch.load(args.resume, map_location="cpu"))
    model = model.to(device)
    print(f"device {device}, {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters")
    data = DataLoader(
        Samples(args.photos, args.fonts, args.size, long_side=1280, blank=args.blank),
        batch_size=args.batch,
        num_workers=args.workers,
        pin_memory=device == "cuda",
        persistent_workers=args.workers > 0,
        prefetch_factor=4 if args.workers > 0 else None,
    )
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    budget = args.minutes * 60
    start = time.monotonic()
    step = 0
    running: dict[str, float] = {}
    halfway_saved = False
    for marked, alpha, color, clean in data:
        elapsed = time.monotonic() - start
        if elapsed > budget:
            break
        warm = min(1.0, elapsed / (0.03 * budget))
        lr = args.lr * warm * 0.5 * (1 + np.cos(np.pi * min(1.0, elapsed / budget)))
        for group in opt.param_groups:
            group["lr"] = lr
        marked, alpha, color, clean = (
            t.to(device, non_blocking=True) for t in (marked, alpha, color, clean)
        )
        # each generated batch is used twice, the second time transposed (data is the bottleneck)
        for view in (False, True):
            batch = (marked, alpha, color, clean)
            if view:
                batch = tuple(t.transpose(2, 3) for t in batch)
            with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
                pred = model(batch[0])
            terms = loss_terms(pred.float(), *batch)
            loss = torch.stack(list(terms.values())).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            for k, v in terms.items():
                running[k] = running.get(k, 0.0) * 0.98 + float(v.detach()) * 0.02
            step += 1
        if not halfway_saved and elapsed > budget / 2:
            export(copy.deepcopy(model), args.out.with_name("half-" + args.out.name))
            halfway_saved = True
        if step % args.report == 0:
            figures = " ".join(f"{k} {v:.4f}" for k, v in running.items())
            print(f"step {step} {elapsed:.0f}s lr {lr:.5f} {figures}", flush=True)
    print(f"trained {step} steps in {time.monotonic() - start:.0f}s")
    torch.save(model.state_dict(), args.out.with_suffix(".pt"))
    digest = export(model, args.out)
    print(f"exported {args.out} sha256 {digest}")


if __name__ == "__main__":
    main()
