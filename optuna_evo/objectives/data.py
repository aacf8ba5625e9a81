"""Datasets as device-resident tensors.

Every loader returns a small dataclass of tensors that already live on the target device, so
the training loop can draw batches by indexing (no ``DataLoader``, no host-to-device copies per
step). Loaded datasets are cached in-process, keyed by file path, device and split options, so
a study does not re-read the files for every trial. Treat the returned tensors as read-only:
they are shared between trials.

Image datasets (FashionMNIST, MNIST) are read from the idx ``.gz`` files with ``gzip`` and
``numpy``. The directory is looked up in this order:

1. the ``data_dir`` argument (if given, only there),
2. ``$OPTUNA_EVO_DATA_DIR`` (the directory itself or its ``<name>`` subfolder),
3. ``./.data/<name>`` relative to the working directory,
4. ``/usr/share/datasets/<name>`` (Debian's ``dataset-fashion-mnist`` package),
5. the download cache (``cache_dir``), where an earlier ``download=True`` put the files
   (with ``data_dir``, the cache is ``data_dir`` unless ``cache_dir`` is given),
6. a download with torchvision into ``cache_dir`` when ``download=True``.

If nothing is found, :class:`DataNotFoundError` lists every place looked at and how to provide
the files.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
from dataclasses import dataclass
from dataclasses import field
import gzip
import math
import os
from pathlib import Path
import struct
import tempfile
import urllib.request
import zlib

import numpy as np
import torch

from optuna_evo._logging import get_logger
from optuna_evo._validation import MAX_TORCH_SEED
from optuna_evo._validation import MIN_TORCH_SEED
from optuna_evo._validation import check_choice
from optuna_evo._validation import check_float
from optuna_evo._validation import check_int

_logger = get_logger(__name__)

ENV_DATA_DIR = "OPTUNA_EVO_DATA_DIR"
"""Environment variable naming a data directory (or a parent of ``<name>`` subfolders)."""

ENV_CACHE_DIR = "OPTUNA_EVO_CACHE_DIR"
"""Environment variable overriding the default download cache directory."""

SYSTEM_DATA_ROOT = Path("/usr/share/datasets")
"""System-wide dataset root (Debian installs ``dataset-fashion-mnist`` below it)."""

LOCAL_DATA_ROOT = Path(".data")
"""Per-project data root, relative to the working directory."""

TINY_SHAKESPEARE_URL = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
)
"""Where nanoGPT's ``shakespeare_char`` preparation downloads tiny shakespeare from."""

IDX_FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
"""Base names of the four idx files (read with or without a ``.gz`` suffix)."""

# name -> (torchvision class name, normalisation mean, std, apt package or None)
_IMAGE_DATASETS: dict[str, tuple[str, float, float, str | None]] = {
    "fashion-mnist": ("FashionMNIST", 0.2860, 0.3530, "dataset-fashion-mnist"),
    "mnist": ("MNIST", 0.1307, 0.3081, None),
}

IMAGE_DATASETS: tuple[str, ...] = tuple(_IMAGE_DATASETS)
"""Names accepted by :func:`load_image_dataset`."""

_IDX_DTYPES: dict[int, str] = {
    0x08: "u1",
    0x09: "i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}

# In-process caches: raw uint8 arrays by file path, finished splits by (path, device, options).
_RAW_CACHE: dict[tuple[str, ...], tuple[np.ndarray, ...]] = {}
_SPLIT_CACHE: dict[tuple[object, ...], object] = {}


# How DataNotFoundError's message names the loaders' arguments unless explain() is told otherwise.
_PYTHON_SPELLING: dict[str, str | None] = {
    "data_dir": "data_dir=",
    "data_path": "data_path=",
    "download": "download=True",
}


class DataNotFoundError(FileNotFoundError):
    """A dataset was not found in any of the places looked at (the message lists them).

    The message names the loaders' Python arguments (``data_dir=``, ``download=True``); a front
    end with options of its own words it with :meth:`explain` (the ``optuna-evo`` command
    names ``--data-dir`` and ``--download``).

    Args:
        summary: The first line, e.g. ``"fashion-mnist idx files not found."``; alone, it is
            the whole message.
        searched: The places looked at, in order.
        remedies: How to provide the data, as ``(argument, text)`` pairs, each shown as
            ``"pass " + <argument as spelled> + text``; with ``argument`` ``None``, ``text``
            alone. Arguments: ``"data_dir"``, ``"data_path"``, ``"download"``.
        download_error: Why a download failed, or ``""``.
    """

    def __init__(
        self,
        summary: str,
        searched: Sequence[Path] = (),
        remedies: Sequence[tuple[str | None, str]] = (),
        download_error: str = "",
    ) -> None:
        self.summary = summary
        self.searched = tuple(searched)
        self.remedies = tuple(remedies)
        self.download_error = download_error
        super().__init__(self.explain())

    def explain(self, spelling: Mapping[str, str | None] | None = None) -> str:
        """The message, with each argument written as ``spelling[argument]`` instead.

        A remedy whose argument ``spelling`` maps to ``None`` is left out (an option that
        the front end does not have). The places and remedies are one ``  - `` line each.
        """
        names = {**_PYTHON_SPELLING, **(spelling or {})}
        lines = [self.summary + (" Looked in:" if self.searched else "")]
        lines += [f"  - {place}" for place in self.searched]
        shown = []
        for argument, text in self.remedies:
            if argument is None:
                shown.append(text)
            elif names.get(argument) is not None:
                shown.append(f"pass {names[argument]}{text}")
        if shown:
            lines.append("To provide the data:")
            lines += [f"  - {remedy}" for remedy in shown]
        if self.download_error:
            lines.append(self.download_error)
        return "\n".join(lines)


@dataclass
class ClassificationSplits:
    """Train / validation / test tensors of a classification dataset on one device.

    Attributes:
        train_x: Training inputs, ``float32``, normalised; images are ``(N, C, H, W)``.
        train_y: Training labels, ``int64`` in ``[0, n_classes)``.
        val_x: Validation inputs.
        val_y: Validation labels.
        test_x: Test inputs (may be empty).
        test_y: Test labels (may be empty).
        n_classes: Number of classes.
        name: Dataset name, e.g. ``"fashion-mnist"``.
        source: Where the data came from (a directory, or ``"synthetic"``).
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    n_classes: int
    name: str = ""
    source: str = ""

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input sample, e.g. ``(1, 28, 28)``."""
        return tuple(self.train_x.shape[1:])

    @property
    def n_features(self) -> int:
        """Number of scalars in one input sample (the width an MLP's first layer needs)."""
        return math.prod(self.input_shape)

    @property
    def device(self) -> torch.device:
        """Device the tensors live on."""
        return self.train_x.device

    def to(self, device: str | torch.device) -> ClassificationSplits:
        """Return a copy with every tensor on ``device`` (``self`` if already there)."""
        device = torch.device(device)
        if _same_device(self.device, device):
            return self
        moved = {name: getattr(self, name).to(device) for name in _TENSOR_FIELDS}
        return dataclasses.replace(self, **moved)


_TENSOR_FIELDS = ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y")


@dataclass
class TextSplits:
    """Character-level text as token ids on one device (nanoGPT's ``shakespeare_char``).

    Attributes:
        train: Training token ids, 1-D ``int64``.
        val: Validation token ids, 1-D ``int64``.
        chars: The vocabulary, sorted unique characters; id ``k`` is ``chars[k]``.
        name: Dataset name.
        source: Path of the text file (or ``"text"`` for in-memory text).
    """

    train: torch.Tensor
    val: torch.Tensor
    chars: list[str]
    name: str = ""
    source: str = ""
    stoi: dict[str, int] = field(init=False, repr=False)
    itos: dict[int, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.stoi = {ch: i for i, ch in enumerate(self.chars)}
        self.itos = dict(enumerate(self.chars))

    @property
    def vocab_size(self) -> int:
        """Number of distinct characters."""
        return len(self.chars)

    @property
    def device(self) -> torch.device:
        """Device the tensors live on."""
        return self.train.device

    def encode(self, text: str) -> list[int]:
        """Map a string to token ids (every character must be in the vocabulary)."""
        return [self.stoi[ch] for ch in text]

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """Map token ids back to a string."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        return "".join(self.itos[int(i)] for i in ids)

    def to(self, device: str | torch.device) -> TextSplits:
        """Return a copy with both tensors on ``device`` (``self`` if already there)."""
        device = torch.device(device)
        if _same_device(self.device, device):
            return self
        return TextSplits(
            self.train.to(device), self.val.to(device), list(self.chars), self.name, self.source
        )


def clear_cache() -> None:
    """Forget every dataset cached in this process (frees their device memory)."""
    _RAW_CACHE.clear()
    _SPLIT_CACHE.clear()


def default_device() -> torch.device:
    """Return ``cuda`` when a GPU is available, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """Turn ``None`` into :func:`default_device` and ``"cuda"`` into the current CUDA device."""
    if device is None:
        return default_device()
    device = torch.device(device)
    if device.type == "cuda" and device.index is None and torch.cuda.is_available():
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def default_cache_dir() -> Path:
    """Download cache: ``$OPTUNA_EVO_CACHE_DIR`` or ``~/.cache/optuna-evo``."""
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "optuna-evo"


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one idx file (optionally gzip-compressed) into a numpy array.

    The idx format is a 4-byte magic number (two zero bytes, a type code, the number of
    dimensions), one big-endian ``int32`` per dimension, then the data in row-major order.

    Args:
        path: File path; a ``.gz`` suffix means gzip compression.

    Returns:
        An array with the file's shape and dtype (``uint8`` for the MNIST family).

    Raises:
        ValueError: If the file is not a valid idx file.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        # An interrupted download, or an error page saved under the data file's name.
        raise ValueError(
            f"{path} is not a readable gzip file ({e}); delete it and provide it again."
        ) from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path} is not an idx file (bad magic number).")
    type_code, ndim = raw[2], raw[3]
    if type_code not in _IDX_DTYPES:
        raise ValueError(f"{path} has unknown idx type code 0x{type_code:02x}.")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path} is truncated (header needs {header} bytes).")
    shape = struct.unpack(f">{ndim}i", raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path} holds {len(raw) - header} data bytes, but its header {shape} needs "
            f"{expected}."
        )
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    # Native byte order and a writable buffer, so torch.from_numpy accepts it without warnings.
    return array.astype(dtype.newbyteorder("="), copy=True)


def load_fashion_mnist(
    data_dir: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = None,
    *,
    n_val: int = 10_000,
    split_seed: int = 0,
    max_train: int | None = None,
    max_val: int | None = None,
    max_test: int | None = None,
    download: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
) -> ClassificationSplits:
    """Load FashionMNIST (normalised with mean 0.2860, std 0.3530).

    Same as ``load_image_dataset("fashion-mnist", ...)``; see :func:`load_image_dataset`.
    """
    return load_image_dataset(
        "fashion-mnist",
        data_dir,
        device,
        n_val=n_val,
        split_seed=split_seed,
        max_train=max_train,
        max_val=max_val,
        max_test=max_test,
        download=download,
        cache_dir=cache_dir,
    )


def load_mnist(
    data_dir: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = None,
    *,
    n_val: int = 10_000,
    split_seed: int = 0,
    max_train: int | None = None,
    max_val: int | None = None,
    max_test: int | None = None,
    download: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
) -> ClassificationSplits:
    """Load MNIST (normalised with mean 0.1307, std 0.3081).

    Same as ``load_image_dataset("mnist", ...)``; see :func:`load_image_dataset`.
    """
    return load_image_dataset(
        "mnist",
        data_dir,
        device,
        n_val=n_val,
        split_seed=split_seed,
        max_train=max_train,
        max_val=max_val,
        max_test=max_test,
        download=download,
        cache_dir=cache_dir,
    )


def load_image_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = None,
    *,
    n_val: int = 10_000,
    split_seed: int = 0,
    max_train: int | None = None,
    max_val: int | None = None,
    max_test: int | None = None,
    download: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
) -> ClassificationSplits:
    """Load an MNIST-family dataset as normalised tensors on ``device``.

    The 60k training images are split by a fixed random permutation (``split_seed``) into
    ``60000 - n_val`` training and ``n_val`` validation images (50k / 10k by default, as in the
    seed GA paper); the 10k test images are kept as the test set. The ``uint8`` pixels are
    moved to the device once and normalised there with the dataset's mean and std.

    Args:
        name: ``"fashion-mnist"`` or ``"mnist"``.
        data_dir: Directory with the idx files (``.gz`` or not). If given, only it is searched.
        device: Target device; ``None`` picks ``cuda`` when available, else ``cpu``.
        n_val: Validation images taken from the training file, in ``[1, n_train_file - 1]``.
        split_seed: Seed of the train/validation permutation.
        max_train: Keep only this many training images (a deterministic subset), ``None`` = all.
        max_val: Keep only this many validation images.
        max_test: Keep only this many test images.
        download: Download with torchvision into ``cache_dir`` if no local files are found.
        cache_dir: Download directory, also searched (see the module docstring); defaults to
            ``data_dir`` if given, else :func:`default_cache_dir` ``/ name``.

    Returns:
        The :class:`ClassificationSplits` (cached: calling again with the same arguments
        returns the same object).

    Raises:
        DataNotFoundError: If the files are found nowhere (the message says where it looked).
        ValueError: If an argument is out of range or a file is malformed.
    """
    check_choice("name", name, IMAGE_DATASETS)
    max_train = check_int("max_train", max_train, 1, none_ok=True)
    max_val = check_int("max_val", max_val, 1, none_ok=True)
    max_test = check_int("max_test", max_test, 1, none_ok=True)
    n_val = check_int("n_val", n_val, 1)
    split_seed = check_int("split_seed", split_seed, MIN_TORCH_SEED, MAX_TORCH_SEED)
    device = resolve_device(device)
    directory = find_image_dir(name, data_dir, download=download, cache_dir=cache_dir)
    key = (name, str(directory), str(device), n_val, split_seed, max_train, max_val, max_test)
    cached = _SPLIT_CACHE.get(key)
    if cached is not None:
        return cached  # type: ignore[return-value]

    train_images, train_labels, test_images, test_labels = _read_image_dir(directory)
    n_file = len(train_images)
    if n_val >= n_file:
        raise ValueError(f"`n_val` must be in [1, {n_file - 1}] for {name}, got {n_val}.")
    n_classes = 10
    for labels, what in ((train_labels, "training"), (test_labels, "test")):
        if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
            raise ValueError(f"{directory}: {what} labels fall outside [0, {n_classes}).")

    perm = torch.randperm(n_file, generator=torch.Generator().manual_seed(split_seed))
    train_idx, val_idx = perm[n_val:], perm[:n_val]
    train_idx = train_idx[:max_train]
    val_idx = val_idx[:max_val]
    test_idx = torch.arange(len(test_images))[:max_test]

    _, mean, std, _ = _IMAGE_DATASETS[name]

    def prepare(
        images: np.ndarray, labels: np.ndarray, idx: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # Copy uint8 pixels to the device first (4x less traffic), normalise there.
        x = torch.from_numpy(images)[idx].to(device, non_blocking=True)
        x = x.unsqueeze(1).float().div_(255.0).sub_(mean).div_(std)
        y = torch.from_numpy(labels)[idx].to(device=device, dtype=torch.int64)
        return x, y

    splits = ClassificationSplits(
        *prepare(train_images, train_labels, train_idx),
        *prepare(train_images, train_labels, val_idx),
        *prepare(test_images, test_labels, test_idx),
        n_classes=n_classes,
        name=name,
        source=str(directory),
    )
    _SPLIT_CACHE[key] = splits
    _logger.debug(
        f"Loaded {name} from {directory} on {device}: {len(splits.train_y)} train, "
        f"{len(splits.val_y)} val, {len(splits.test_y)} test."
    )
    return splits


def image_search_paths(name: str, data_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Directories searched for an image dataset's idx files, in order.

    Args:
        name: ``"fashion-mnist"`` or ``"mnist"``.
        data_dir: Explicit directory; if given, only it (and its ``<name>`` and torchvision
            ``<Class>/raw`` subfolders) is searched.

    Returns:
        Candidate directories (they need not exist).
    """
    check_choice("name", name, IMAGE_DATASETS)
    tv_name = _IMAGE_DATASETS[name][0]

    def variants(root: Path) -> list[Path]:
        return [root, root / name, root / tv_name / "raw"]

    if data_dir is not None:
        return variants(Path(data_dir).expanduser())
    paths: list[Path] = []
    env = os.environ.get(ENV_DATA_DIR)
    if env:
        paths += variants(Path(env).expanduser())
    paths += [LOCAL_DATA_ROOT / name, SYSTEM_DATA_ROOT / name]
    return paths


def find_image_dir(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Return the directory holding ``name``'s idx files, downloading if allowed.

    Args:
        name: ``"fashion-mnist"`` or ``"mnist"``.
        data_dir: Explicit directory (searched alone).
        download: Download with torchvision when nothing is found.
        cache_dir: Download directory, also searched (default: ``data_dir`` if given, else
            :func:`default_cache_dir` ``/ name``).

    Returns:
        The resolved directory.

    Raises:
        DataNotFoundError: If the files are not found and cannot be downloaded.
    """
    tv_name, _, _, apt_package = _IMAGE_DATASETS[name]
    if cache_dir is None:
        cache_dir = data_dir if data_dir is not None else default_cache_dir() / name
    cache = Path(cache_dir).expanduser()
    raw_dir = cache / tv_name / "raw"
    searched = image_search_paths(name, data_dir)
    if raw_dir not in searched:
        searched.append(raw_dir)  # What an earlier download fetched.
    for candidate in searched:
        if _has_idx_files(candidate):
            return candidate.resolve()
    download_error = ""
    if download:
        try:
            _download_torchvision(tv_name, cache)
        except Exception as e:  # Any network / torchvision failure ends in one clear error.
            download_error = f"The download into {cache} failed: {e!r}"
        else:
            if _has_idx_files(raw_dir):
                return raw_dir.resolve()
            download_error = f"The download into {cache} did not produce the idx files."
    files = ", ".join(f"{base}.gz" for base in IDX_FILES.values())
    how: list[tuple[str | None, str]] = [("data_dir", f"<directory holding {files}>")]
    if apt_package:
        how.append((None, f"install Debian's package (apt-get install {apt_package})"))
    if data_dir is None:  # An explicit data_dir overrides the variable.
        how.append(
            (
                None,
                f"set ${ENV_DATA_DIR} to that directory (or a parent with a '{name}' subfolder)",
            )
        )
    if not download:  # Else the download just failed; download_error says why.
        how.append(("download", f" to fetch it with torchvision into {cache}"))
    raise DataNotFoundError(f"{name} idx files not found.", searched, how, download_error)


def _download_torchvision(tv_name: str, root: Path) -> None:
    import torchvision.datasets  # Only needed for the download fallback.

    cls = getattr(torchvision.datasets, tv_name)
    root.mkdir(parents=True, exist_ok=True)
    _logger.info(f"Downloading {tv_name} into {root} with torchvision.")
    cls(str(root), train=True, download=True)
    cls(str(root), train=False, download=True)


def _idx_file(directory: Path, base: str) -> Path | None:
    for candidate in (directory / f"{base}.gz", directory / base):
        if candidate.is_file():
            return candidate
    return None


def _has_idx_files(directory: Path) -> bool:
    return directory.is_dir() and all(_idx_file(directory, b) for b in IDX_FILES.values())


def _read_image_dir(directory: Path) -> tuple[np.ndarray, ...]:
    paths = [_idx_file(directory, base) for base in IDX_FILES.values()]
    key = tuple(str(p) for p in paths)
    cached = _RAW_CACHE.get(key)
    if cached is not None:
        return cached
    arrays = tuple(read_idx(p) for p in paths if p is not None)
    train_images, train_labels, test_images, test_labels = arrays
    for images, labels, what in (
        (train_images, train_labels, "train"),
        (test_images, test_labels, "test"),
    ):
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"{directory}: {what} images {images.shape} and labels {labels.shape} do not "
                "form an (N, H, W) / (N,) pair."
            )
        if images.dtype != np.uint8:
            raise ValueError(f"{directory}: {what} images must be uint8, got {images.dtype}.")
    _RAW_CACHE[key] = arrays
    return arrays


def text_search_paths(data_path: str | os.PathLike[str] | None = None) -> list[Path]:
    """Files searched for tiny shakespeare's ``input.txt``, in order.

    Args:
        data_path: Explicit file, or a directory holding ``input.txt``; if given, only it is
            searched.

    Returns:
        Candidate file paths (they need not exist).
    """
    if data_path is not None:
        path = Path(data_path).expanduser()
        return [path / "input.txt"] if path.is_dir() else [path]
    name = "tinyshakespeare"
    paths: list[Path] = []
    env = os.environ.get(ENV_DATA_DIR)
    if env:
        root = Path(env).expanduser()
        paths += [root / "input.txt", root / name / "input.txt"]
    paths += [
        LOCAL_DATA_ROOT / name / "input.txt",
        Path("..") / "shared" / "data" / name / "input.txt",
        Path("shared") / "data" / name / "input.txt",
        SYSTEM_DATA_ROOT / name / "input.txt",
    ]
    return paths


def find_tiny_shakespeare(
    data_path: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Return the path of tiny shakespeare's ``input.txt``, downloading if allowed.

    Args:
        data_path: Explicit file or directory (searched alone; a download goes there).
        download: Download from :data:`TINY_SHAKESPEARE_URL` when nothing is found.
        cache_dir: Download directory without ``data_path``, also searched (default
            :func:`default_cache_dir` ``/ tinyshakespeare``).

    Returns:
        The resolved file path.

    Raises:
        DataNotFoundError: If the file is not found and cannot be downloaded.
    """
    searched = text_search_paths(data_path)
    if data_path is not None:
        # Searched alone, and downloaded into (a typo in it must not train on a cached copy).
        target = searched[0]
        cache = target.parent
    else:
        default = default_cache_dir() / "tinyshakespeare"
        cache = Path(cache_dir).expanduser() if cache_dir else default
        target = cache / "input.txt"
        if target not in searched:
            searched.append(target)  # what an earlier download fetched
    for candidate in searched:
        if candidate.is_file():
            return candidate.resolve()
    download_error = ""
    if download:
        tmp: Path | None = None
        try:
            cache.mkdir(parents=True, exist_ok=True)
            _logger.info(f"Downloading tiny shakespeare into {target}.")
            # A file of its own per download: workers fetching at once never share a half file;
            # the atomic rename lets the last complete one win.
            fd, name = tempfile.mkstemp(dir=cache, prefix="input.", suffix=".part")
            os.close(fd)
            tmp = Path(name)
            urllib.request.urlretrieve(TINY_SHAKESPEARE_URL, tmp)
            os.replace(tmp, target)
            return target.resolve()
        except Exception as e:  # Any network failure ends in one clear error.
            download_error = f"The download from {TINY_SHAKESPEARE_URL} failed: {e!r}"
        finally:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
    how: list[tuple[str | None, str]] = [
        ("data_path", "<path of input.txt, or the directory holding it>")
    ]
    if data_path is None:  # An explicit data_path overrides the variable.
        how.append(
            (
                None,
                f"set ${ENV_DATA_DIR} to a directory holding input.txt (or a 'tinyshakespeare' "
                "subfolder)",
            )
        )
    if not download:  # Else the download just failed; download_error says why.
        how.append(("download", f" to fetch {TINY_SHAKESPEARE_URL} into {cache}"))
    raise DataNotFoundError(
        "tiny shakespeare (input.txt) not found.", searched, how, download_error
    )


def load_tiny_shakespeare(
    data_path: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = None,
    *,
    val_fraction: float = 0.1,
    download: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
) -> TextSplits:
    """Load tiny shakespeare as character ids on ``device`` (nanoGPT's ``shakespeare_char``).

    Args:
        data_path: Path of ``input.txt`` or its directory; see :func:`text_search_paths`.
        device: Target device; ``None`` picks ``cuda`` when available, else ``cpu``.
        val_fraction: Fraction of the text (its end) used for validation, in ``(0, 1)``;
            nanoGPT uses 0.1.
        download: Download the text if no local copy is found.
        cache_dir: Download directory.

    Returns:
        The :class:`TextSplits` (cached per path, device and fraction).

    Raises:
        DataNotFoundError: If the file is found nowhere (the message says where it looked).
    """
    device = resolve_device(device)
    path = find_tiny_shakespeare(data_path, download=download, cache_dir=cache_dir)
    key = ("tinyshakespeare", str(path), str(device), val_fraction)
    cached = _SPLIT_CACHE.get(key)
    if cached is not None:
        return cached  # type: ignore[return-value]
    text = path.read_text(encoding="utf-8")
    splits = make_text_splits(
        text, device, val_fraction=val_fraction, name="tinyshakespeare", source=str(path)
    )
    _SPLIT_CACHE[key] = splits
    return splits


def make_text_splits(
    text: str,
    device: str | torch.device | None = None,
    *,
    val_fraction: float = 0.1,
    name: str = "text",
    source: str = "text",
) -> TextSplits:
    """Character-level train / validation split of a string (first 90 % / last 10 %).

    Args:
        text: The corpus.
        device: Target device.
        val_fraction: Fraction of characters at the end used for validation, in ``(0, 1)``.
        name: Name stored in the result.
        source: Source stored in the result.

    Returns:
        The :class:`TextSplits`.
    """
    val_fraction = check_float("val_fraction", val_fraction, 0, 1, low_open=True, high_open=True)
    if len(text) < 2:
        raise ValueError(f"text must have at least 2 characters, got {len(text)}.")
    device = resolve_device(device)
    chars = sorted(set(text))
    lut = np.zeros(max(ord(c) for c in chars) + 1, dtype=np.int64)
    lut[[ord(c) for c in chars]] = np.arange(len(chars))
    # Vectorised encoding: the code points of the text mapped through a lookup table.
    codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    ids = torch.from_numpy(lut[codes])
    n_train = int(len(ids) * (1.0 - val_fraction))
    n_train = min(max(n_train, 1), len(ids) - 1)
    return TextSplits(
        ids[:n_train].to(device), ids[n_train:].to(device), chars, name=name, source=source
    )


def make_synthetic(
    n: int = 2000,
    n_features: int = 20,
    n_classes: int = 4,
    seed: int = 0,
    device: str | torch.device | None = None,
    *,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    spread: float = 1.0,
) -> ClassificationSplits:
    """Gaussian blobs: a small, learnable classification set for tests.

    Class centres are drawn from ``N(0, 8 / n_features)`` per coordinate, so two centres are
    about 4 apart whatever the dimension; a sample is its class centre plus ``N(0, spread^2)``
    noise per coordinate. With ``spread=1`` a linear model reaches roughly 90-95 % accuracy.

    Args:
        n: Total number of samples (split into train / val / test), at least 3.
        n_features: Input dimension, at least 1.
        n_classes: Number of classes, at least 2.
        seed: Random seed; the same seed gives the same data.
        device: Target device.
        val_fraction: Fraction of samples for validation, in ``(0, 1)``.
        test_fraction: Fraction of samples for testing, in ``[0, 1)``.
        spread: Noise scale relative to the centre scale (larger = harder), ``> 0``.

    Returns:
        The :class:`ClassificationSplits` with ``x`` of shape ``(N, n_features)``.
    """
    n = check_int("n", n, 3)
    seed = check_int("seed", seed, MIN_TORCH_SEED, MAX_TORCH_SEED)
    n_features = check_int("n_features", n_features, 1)
    n_classes = check_int("n_classes", n_classes, 2)
    val_fraction = check_float("val_fraction", val_fraction, 0, 1, low_open=True, high_open=True)
    test_fraction = check_float("test_fraction", test_fraction, 0, 1, high_open=True)
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"`test_fraction` must be < 1 - val_fraction = {1 - val_fraction:.4g}, "
            f"got {test_fraction!r}."
        )
    spread = check_float("spread", spread, 0, low_open=True)
    device = resolve_device(device)
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_classes, n_features, generator=g) * math.sqrt(8.0 / n_features)
    y = torch.randint(0, n_classes, (n,), generator=g)
    x = centres[y] + torch.randn(n, n_features, generator=g) * spread
    n_val = max(1, int(n * val_fraction))
    n_test = int(n * test_fraction)
    n_train = n - n_val - n_test
    if n_train < 1:
        raise ValueError(f"n={n} leaves no training samples after the val/test split.")
    val, test = slice(n_train, n_train + n_val), slice(n_train + n_val, None)
    return ClassificationSplits(
        x[:n_train], y[:n_train], x[val], y[val], x[test], y[test],
        n_classes=n_classes, name="synthetic", source="synthetic",
    ).to(device)  # fmt: skip


def _same_device(a: torch.device, b: torch.device) -> bool:
    if a.type != b.type:
        return False
    if a.type == "cuda" and (a.index is None or b.index is None):
        return True
    return a.index == b.index
