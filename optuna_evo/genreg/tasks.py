"""GENREG tasks: flattened image classification splits on one device.

* ``"mnist"`` / ``"fashion-mnist"``: from :func:`optuna_evo.objectives.data.load_image_dataset`
  (normalised pixels, 50k / 10k / 10k train / validation / test), flattened to 784 features.
* ``"alphabet"``: the seed's alphabet task, the 26 canonical letters of
  :func:`~optuna_evo.genreg.alphabet.render_alphabet`; train, validation and test are the same
  26 images (the task is to recognise every letter).
* ``"alphabet-augmented"``: train on ``variations`` renderings per letter (the canonical one and
  random fonts / offsets / scales), validate and test on unseen random renderings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import os

import torch

from optuna_evo._validation import check_choice
from optuna_evo._validation import check_int
from optuna_evo.genreg.alphabet import LETTERS
from optuna_evo.genreg.alphabet import render_alphabet
from optuna_evo.objectives.data import load_image_dataset
from optuna_evo.objectives.data import resolve_device

TASKS: tuple[str, ...] = ("fashion-mnist", "mnist", "alphabet", "alphabet-augmented")
"""Names accepted by :func:`load_task`."""

CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "fashion-mnist": (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ),
    "mnist": tuple(str(d) for d in range(10)),
    "alphabet": tuple(LETTERS),
    "alphabet-augmented": tuple(LETTERS),
}  # fmt: skip
"""Human-readable class names per task, in label order."""


@dataclass
class GenregTask:
    """Flattened train / validation / test tensors of one task, on one device.

    Attributes:
        train_x: Training inputs ``[N, features]``, ``float32``.
        train_y: Training labels ``[N]``, ``int64``.
        val_x: Validation inputs.
        val_y: Validation labels.
        test_x: Test inputs.
        test_y: Test labels.
        n_classes: Number of classes.
        class_names: Name of every class.
        name: Task name.
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    n_classes: int
    class_names: Sequence[str]
    name: str

    @property
    def n_features(self) -> int:
        """Input width (the first entry of a GENREG network's ``layers``)."""
        return int(self.train_x.shape[1])

    def default_layers(self, hidden: int | Sequence[int] = 64) -> list[int]:
        """``[n_features, *hidden, n_classes]``."""
        widths = [hidden] if isinstance(hidden, int) else list(hidden)
        return [self.n_features, *widths, self.n_classes]


def load_task(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = None,
    max_train: int | None = None,
    max_val: int | None = None,
    max_test: int | None = None,
    size: int = 100,
    variations: int = 8,
    eval_variations: int = 4,
    seed: int = 0,
    download: bool = False,
) -> GenregTask:
    """Load a GENREG task.

    Args:
        name: One of :data:`TASKS`.
        data_dir: Directory of the MNIST / FashionMNIST idx files (see
            :func:`~optuna_evo.objectives.data.load_image_dataset`).
        device: Device of the tensors; ``None`` = CUDA when available, else CPU.
        max_train: Keep only this many training images (image datasets).
        max_val: Keep only this many validation images (image datasets).
        max_test: Keep only this many test images (image datasets).
        size: Alphabet image size in pixels (``features = size * size``).
        variations: Training renderings per letter for ``"alphabet-augmented"``.
        eval_variations: Validation and test renderings per letter for
            ``"alphabet-augmented"``.
        seed: Seed of the alphabet's random renderings.
        download: Download MNIST / FashionMNIST with torchvision if no local copy is found.

    Returns:
        The :class:`GenregTask`.
    """
    check_choice("name", name, TASKS)
    device = resolve_device(device)
    if name in ("fashion-mnist", "mnist"):
        splits = load_image_dataset(
            name,
            data_dir,
            device,
            max_train=max_train,
            max_val=max_val,
            max_test=max_test,
            download=download,
        )

        def flat(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(len(t), -1)

        return GenregTask(
            flat(splits.train_x), splits.train_y,
            flat(splits.val_x), splits.val_y,
            flat(splits.test_x), splits.test_y,
            splits.n_classes, CLASS_NAMES[name], name,
        )  # fmt: skip
    if name == "alphabet":
        x, y = render_alphabet(size, 1)
        x, y = x.to(device), y.to(device)
        return GenregTask(x, y, x, y, x, y, len(LETTERS), CLASS_NAMES[name], name)
    eval_variations = check_int("eval_variations", eval_variations, 1)
    train_x, train_y = render_alphabet(size, variations, seed=seed)
    # One extra variation per split, then drop the canonical one: unseen renderings only.
    val_x, val_y = render_alphabet(size, eval_variations + 1, seed=seed + 1)
    test_x, test_y = render_alphabet(size, eval_variations + 1, seed=seed + 2)
    n = len(LETTERS)
    return GenregTask(
        train_x.to(device), train_y.to(device),
        val_x[n:].to(device), val_y[n:].to(device),
        test_x[n:].to(device), test_y[n:].to(device),
        n, CLASS_NAMES[name], name,
    )  # fmt: skip
