"""Examples/s of CIFAR training batches: the device-resident pipeline vs a per-sample DataLoader.

Both produce the same thing from the same uint8 images (synthetic, 10k by default): batches of
randomly cropped (padding 4, reflect), randomly flipped, normalised float32 images with their
labels, in a fresh shuffled order each epoch. The device pipeline is the task's own
:class:`~optbench.tasks.cifar.stream.CifarStream` (the data set padded and mirrored once, then one
``index_select`` of pixel rows and one fused normalisation per batch); the baseline is a
``torch.utils.data.Dataset`` whose ``__getitem__`` pads, crops, flips and normalises one image
with torch ops, read through a ``DataLoader`` with ``num_workers`` 0 and 2 (persistent workers,
so their start-up is paid in the untimed warm-up epoch). Each pipeline runs a warm-up epoch,
then ``--epochs`` timed epochs, the pipelines taking turns epoch by epoch; the ratio is of
examples per second, against the faster of the two DataLoader settings. The main process runs
``--threads`` torch threads (default 1: per-sample ops on one image are several times slower
with two intra-op threads than with one; DataLoader workers always use one).

Goal: on CPU, the device pipeline at least 5x the best DataLoader setting (issue 18).

    python benchmarks/cifar_pipeline.py                 # about 15 seconds on 2 cores
    python benchmarks/cifar_pipeline.py --device cuda   # the device pipeline on a GPU
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterable

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from optbench.tasks.cifar.augment import MEAN_STD, Augment, Normalize
from optbench.tasks.cifar.data import Split, synthetic
from optbench.tasks.cifar.stream import CifarStream

PAD = 4


class PerSampleCifar(Dataset):
    """The textbook per-image pipeline (RandomCrop(32, padding=4), flip, normalise)."""

    def __init__(self, split: Split) -> None:
        self.split = split
        mean, std = MEAN_STD["cifar10"]
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.split.images[i].float().div_(255)
        padded = F.pad(image[None], (PAD,) * 4, mode="reflect")[0]
        dy, dx = torch.randint(0, 2 * PAD + 1, (2,)).tolist()
        image = padded[:, dy : dy + 32, dx : dx + 32]
        if torch.rand(()) < 0.5:
            image = image.flip(-1)
        return (image - self.mean) / self.std, self.split.labels[i]


def examples_per_second(
    pipelines: dict[str, Callable[[], Iterable]], epochs: int, sync: Callable[[], None]
) -> dict[str, float]:
    """Each pipeline's rate: an untimed warm-up epoch each, then ``epochs`` rounds that time one
    epoch of each in turn, so a change in the machine's load hits them all alike."""
    for epoch in pipelines.values():
        for _ in epoch():
            pass
    counts, seconds = dict.fromkeys(pipelines, 0), dict.fromkeys(pipelines, 0.0)
    for _ in range(epochs):
        for name, epoch in pipelines.items():
            sync()
            start = time.perf_counter()
            for _, labels in epoch():
                counts[name] += len(labels)
            sync()
            seconds[name] += time.perf_counter() - start
    return {name: counts[name] / seconds[name] for name in pipelines}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    train, _ = synthetic(10, args.images, 1, seed=0)
    steps = args.images // args.batch_size

    on_device = train.to(device)
    normalize = Normalize(*MEAN_STD["cifar10"], torch.float32, device)
    start = time.perf_counter()
    stream = CifarStream(on_device, normalize, Augment(PAD, "reflect"), 0, args.batch_size,
                         args.batch_size)
    sync()
    prepare_seconds = time.perf_counter() - start

    def device_epoch() -> Iterable:
        return ((mb.images, mb.labels) for _ in range(steps) for mb in next(stream))

    pipelines = {"device-resident (CifarStream)": device_epoch}
    for workers in (0, 2):
        loader = DataLoader(PerSampleCifar(train), batch_size=args.batch_size, shuffle=True,
                            drop_last=True, num_workers=workers, persistent_workers=workers > 0)
        pipelines[f"per-sample DataLoader, {workers} workers"] = lambda loader=loader: loader
    rates = examples_per_second(pipelines, args.epochs, sync)

    baseline = max(rate for name, rate in rates.items() if "DataLoader" in name)
    print(f"{args.images} synthetic images, batch {args.batch_size}, crop (pad {PAD}, reflect) "
          f"+ flip + normalise, {args.epochs} timed epochs each (interleaved), torch threads "
          f"{torch.get_num_threads()}, device pipeline on {device} (its one-off padding of the "
          f"data set: {prepare_seconds * 1e3:.0f} ms, not timed)")
    print(f"{'pipeline':<36} {'examples/s':>12} {'vs best DataLoader':>20}")
    for name, rate in rates.items():
        print(f"{name:<36} {rate:>12,.0f} {rate / baseline:>19.1f}x")


if __name__ == "__main__":
    main()
