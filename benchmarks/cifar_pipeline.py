"""Examples/s of CIFAR training batches: the device-resident pipeline vs a per-sample DataLoader.

Both produce the same thing from the same uint8 images (synthetic, 10k by default): batches of
randomly cropped (padding 4, reflect), randomly flipped, normalised float32 images with their
labels, in a fresh shuffled order each epoch. The device pipeline is the task's own
:class:`~optbench.tasks.cifar.stream.CifarStream` (one gather per batch); the baseline is a
``torch.utils.data.Dataset`` whose ``__getitem__`` pads, crops, flips and normalises one image
with torch ops, read through a ``DataLoader`` with ``num_workers`` 0 and 2 (persistent workers,
so their start-up is paid in the untimed warm-up epoch). Each pipeline runs a warm-up epoch,
then ``--epochs`` timed epochs; the ratio is of examples per second. The main process runs
``--threads`` torch threads (default 1: per-sample ops on one image are several times slower
with two intra-op threads than with one; DataLoader workers always use one).

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


def examples_per_second(epoch: Callable[[], Iterable], epochs: int, device: torch.device) -> float:
    for _ in epoch():  # warm-up
        pass
    count, start = 0, time.perf_counter()
    for _ in range(epochs):
        for images, labels in epoch():
            count += len(labels)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    train, _ = synthetic(10, args.images, 1, seed=0)
    steps = args.images // args.batch_size

    on_device = train.to(device)
    normalize = Normalize(*MEAN_STD["cifar10"], torch.float32, device)
    stream = CifarStream(on_device, normalize, Augment(PAD, "reflect"), 0, args.batch_size,
                         args.batch_size)

    def device_epoch() -> Iterable:
        return ((mb.images, mb.labels) for _ in range(steps) for mb in next(stream))

    rows = [("device-resident (CifarStream)", examples_per_second(device_epoch, args.epochs,
                                                                  device))]
    for workers in (0, 2):
        loader = DataLoader(PerSampleCifar(train), batch_size=args.batch_size, shuffle=True,
                            drop_last=True, num_workers=workers, persistent_workers=workers > 0)
        rows.append((f"per-sample DataLoader, {workers} workers",
                     examples_per_second(lambda loader=loader: loader, args.epochs, torch.device("cpu"))))

    baseline = rows[1][1]
    print(f"{args.images} synthetic images, batch {args.batch_size}, crop (pad {PAD}, reflect) "
          f"+ flip + normalise, {args.epochs} timed epochs, torch threads "
          f"{torch.get_num_threads()}, device pipeline on {device}")
    print(f"{'pipeline':<36} {'examples/s':>12} {'vs DataLoader(0 workers)':>26}")
    for name, rate in rows:
        print(f"{name:<36} {rate:>12,.0f} {rate / baseline:>25.1f}x")


if __name__ == "__main__":
    main()
