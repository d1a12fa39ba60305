"""On-device augmentation: every output is a crop (and maybe flip) of its padded input, the
randomness is fixed by the generator's seed, and normalisation uses the CIFAR statistics."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from optbench.tasks.cifar.augment import MEAN_STD, Augment, Normalize

PAD = 4


def _images(n: int = 24, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 32, 32), generator=generator, dtype=torch.uint8)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _augmented(augment: Augment, images: torch.Tensor, seed: int) -> torch.Tensor:
    """The whole of ``images`` augmented as one batch."""
    return augment.prepare(images).crops(torch.arange(len(images)), _generator(seed))


def _which_view(image: torch.Tensor, out: torch.Tensor, mode: str) -> tuple[int, int, bool]:
    """The (row shift, column shift, flipped) whose crop of the padded ``image`` is ``out``."""
    pad_mode = "reflect" if mode == "reflect" else "constant"
    padded = F.pad(image[None].float(), (PAD,) * 4, mode=pad_mode)[0]
    for dy in range(2 * PAD + 1):
        for dx in range(2 * PAD + 1):
            crop = padded[:, dy : dy + 32, dx : dx + 32]
            for flipped in (False, True):
                if torch.equal(crop.flip(-1) if flipped else crop, out.float()):
                    return dy, dx, flipped
    raise AssertionError("the output is no crop or flipped crop of the padded input")


@pytest.mark.parametrize("mode", ["reflect", "zeros"])
def test_each_output_is_a_random_crop_and_flip_of_its_padded_input(mode):
    images = _images()
    out = _augmented(Augment(PAD, mode), images, 0)
    assert out.dtype == torch.uint8 and out.shape == images.shape
    views = [_which_view(image, o, mode) for image, o in zip(images, out)]
    assert len({(dy, dx) for dy, dx, _ in views}) > 10  # shifts vary across the batch
    assert 0 < sum(flipped for *_, flipped in views) < len(views)  # some flipped, some not
    assert any((dy, dx) != (PAD, PAD) for dy, dx, _ in views)  # images actually change


def test_augmentation_is_fixed_by_the_seed():
    images = _images()
    first = _augmented(Augment(), images, 7)
    assert torch.equal(first, _augmented(Augment(), images, 7))
    assert not torch.equal(first, _augmented(Augment(), images, 8))


def test_without_padding_or_flip_nothing_changes():
    images = _images()
    assert torch.equal(_augmented(Augment(pad=0, flip=False), images, 0), images)


@pytest.mark.parametrize("mode", ["reflect", "zeros"])
def test_crops_are_the_per_sample_recipe_applied_with_the_same_draws(mode):
    """Pinned draws (shifts, then flips) and pixels: a stored run's batches stay reproducible."""
    images = _images()
    indices = torch.tensor([5, 0, 23, 5, 11, 2, 17, 8, 8, 1])  # any order, repeats allowed
    out = Augment(PAD, mode).prepare(images).crops(indices, _generator(3))
    generator = _generator(3)
    shifts = torch.randint(0, 2 * PAD + 1, (2, len(indices)), generator=generator)
    flipped = torch.rand(len(indices), generator=generator) < 0.5
    pad_mode = "reflect" if mode == "reflect" else "constant"
    for b, i in enumerate(indices):
        padded = F.pad(images[i][None].float(), (PAD,) * 4, mode=pad_mode)[0]
        dy, dx = shifts[:, b].tolist()
        crop = padded[:, dy : dy + 32, dx : dx + 32]
        assert torch.equal(out[b].float(), crop.flip(-1) if flipped[b] else crop)


def test_normalize_uses_the_cifar_statistics():
    images = _images(4)
    mean, std = MEAN_STD["cifar10"]
    out = Normalize(mean, std, torch.float64, torch.device("cpu"))(images)
    expected = (images.double() / 255 - torch.tensor(mean).double().view(1, 3, 1, 1)) / (
        torch.tensor(std).double().view(1, 3, 1, 1)
    )
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, expected)
