from __future__ import annotations

from collections.abc import Callable
import gzip
import math
from pathlib import Path
import pickle
import struct
import threading

import numpy as np
import pytest
import torch

from optuna_evo.objectives import data as data_mod
from optuna_evo.objectives.data import DataNotFoundError
from optuna_evo.objectives.data import clear_cache
from optuna_evo.objectives.data import load_fashion_mnist
from optuna_evo.objectives.data import load_image_dataset
from optuna_evo.objectives.data import load_mnist
from optuna_evo.objectives.data import load_tiny_shakespeare
from optuna_evo.objectives.data import make_synthetic
from optuna_evo.objectives.data import make_text_splits
from optuna_evo.objectives.data import read_idx

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
SHAKESPEARE = Path(__file__).resolve().parents[2] / "shared/data/tinyshakespeare/input.txt"
needs_fashion = pytest.mark.skipif(
    not (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed",
)
needs_shakespeare = pytest.mark.skipif(
    not SHAKESPEARE.is_file(), reason="tiny shakespeare is not available"
)

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(data_mod.ENV_DATA_DIR, raising=False)
    clear_cache()


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> None:
    """Independent idx writer (ubyte only): magic 0x0000 0x08 ndim, big-endian dims, data."""
    assert array.dtype == np.uint8
    payload = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    payload += array.tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def write_fake_mnist(
    directory: Path, n_train: int = 60, n_test: int = 20, compress: bool = True, seed: int = 0
) -> tuple[np.ndarray, ...]:
    """Random 28x28 images whose top-left pixel encodes the label (label * 20)."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = []
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
        images[:, 0, 0] = labels * 20
        write_idx(directory / f"{prefix}-images-idx3-ubyte", images, compress)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte", labels, compress)
        arrays += [images, labels]
    return tuple(arrays)


def test_read_idx_gz_and_plain(tmp_path: Path) -> None:
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a", array, compress=True)
    write_idx(tmp_path / "b", array, compress=False)
    for name in ("a.gz", "b"):
        out = read_idx(tmp_path / name)
        assert out.dtype == np.uint8
        np.testing.assert_array_equal(out, array)


def test_read_idx_rejects_malformed_files(tmp_path: Path) -> None:
    (tmp_path / "magic").write_bytes(b"\x01\x00\x08\x01" + struct.pack(">i", 1) + b"\x00")
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "magic")
    (tmp_path / "short").write_bytes(b"\x00\x00\x08\x01" + struct.pack(">i", 5) + b"\x00")
    with pytest.raises(ValueError, match="needs 5"):
        read_idx(tmp_path / "short")


def test_read_idx_names_a_broken_gzip_file(tmp_path: Path) -> None:
    # An interrupted download and an error page saved as .gz: ValueError naming the file.
    write_idx(tmp_path / "cut", np.zeros((50, 28, 28), np.uint8), compress=True)
    whole = (tmp_path / "cut.gz").read_bytes()
    (tmp_path / "cut.gz").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "page.gz").write_bytes(b"<html>404 Not Found</html>")
    for name in ("cut.gz", "page.gz"):
        with pytest.raises(ValueError, match=f"{name} is not a readable gzip file"):
            read_idx(tmp_path / name)


@needs_fashion
def test_fashion_mnist_reads_debian_files() -> None:
    splits = load_fashion_mnist(DEBIAN_FASHION, device="cpu")
    assert splits.train_x.shape == (50_000, 1, 28, 28)
    assert splits.val_x.shape == (10_000, 1, 28, 28)
    assert splits.test_x.shape == (10_000, 1, 28, 28)
    for x, y in (
        (splits.train_x, splits.train_y),
        (splits.val_x, splits.val_y),
        (splits.test_x, splits.test_y),
    ):
        assert x.dtype == torch.float32
        assert y.dtype == torch.int64
        assert len(x) == len(y)
        assert int(y.min()) == 0 and int(y.max()) == 9
    assert splits.n_classes == 10
    assert splits.n_features == 784
    assert splits.source == str(DEBIAN_FASHION.resolve())
    # Normalised with FashionMNIST's statistics: roughly zero mean, unit std.
    assert abs(float(splits.train_x.mean())) < 0.05
    assert 0.95 < float(splits.train_x.std()) < 1.05
    # Balanced classes in the test file (1000 each).
    assert torch.bincount(splits.test_y).tolist() == [1000] * 10


@needs_fashion
def test_fashion_mnist_subsets_are_deterministic_prefixes() -> None:
    full = load_fashion_mnist(DEBIAN_FASHION, device="cpu")
    small = load_fashion_mnist(DEBIAN_FASHION, device="cpu", max_train=100, max_val=50)
    assert small.train_x.shape[0] == 100 and small.val_x.shape[0] == 50
    assert torch.equal(small.train_x, full.train_x[:100])
    assert torch.equal(small.val_y, full.val_y[:50])
    other = load_fashion_mnist(DEBIAN_FASHION, device="cpu", max_train=100, split_seed=1)
    assert not torch.equal(other.train_x, small.train_x)


def test_mnist_loader_on_written_files(tmp_path: Path) -> None:
    train_images, train_labels, test_images, test_labels = write_fake_mnist(tmp_path / "m")
    splits = load_mnist(tmp_path / "m", device="cpu", n_val=15)
    assert splits.train_x.shape == (45, 1, 28, 28) and splits.val_x.shape == (15, 1, 28, 28)
    assert splits.test_x.shape == (20, 1, 28, 28)
    assert splits.name == "mnist"

    def pixels(x: torch.Tensor) -> np.ndarray:
        return torch.round((x * MNIST_STD + MNIST_MEAN) * 255).to(torch.int64).numpy()

    # Images stay aligned with their labels through the split (top-left pixel = label * 20).
    for x, y in ((splits.train_x, splits.train_y), (splits.val_x, splits.val_y)):
        np.testing.assert_array_equal(pixels(x)[:, 0, 0, 0], y.numpy() * 20)
    # Train and validation together are exactly the training file.
    got = np.sort(np.concatenate([pixels(splits.train_x), pixels(splits.val_x)]).sum((1, 2, 3)))
    np.testing.assert_array_equal(got, np.sort(train_images.astype(np.int64).sum((1, 2))))
    np.testing.assert_array_equal(pixels(splits.test_x)[:, 0], test_images)
    np.testing.assert_array_equal(splits.test_y.numpy(), test_labels)


def test_mnist_plain_files_and_torchvision_layout(tmp_path: Path) -> None:
    write_fake_mnist(tmp_path / "MNIST" / "raw", compress=False)
    splits = load_mnist(tmp_path, device="cpu", n_val=10)
    assert splits.train_x.shape[0] == 50
    assert splits.source == str((tmp_path / "MNIST" / "raw").resolve())


def test_env_var_with_subfolder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_fake_mnist(tmp_path / "mnist")
    monkeypatch.setenv(data_mod.ENV_DATA_DIR, str(tmp_path))
    splits = load_mnist(device="cpu", n_val=10)
    assert splits.source == str((tmp_path / "mnist").resolve())


def test_local_data_dir_is_searched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_fake_mnist(tmp_path / ".data" / "mnist")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(data_mod, "SYSTEM_DATA_ROOT", tmp_path / "system")
    splits = load_mnist(device="cpu", n_val=10)
    assert splits.source == str((tmp_path / ".data" / "mnist").resolve())


def test_cache_returns_same_object_until_cleared(tmp_path: Path) -> None:
    write_fake_mnist(tmp_path)
    first = load_mnist(tmp_path, device="cpu", n_val=10)
    assert load_mnist(tmp_path, device="cpu", n_val=10) is first
    assert load_mnist(tmp_path, device="cpu", n_val=11) is not first
    clear_cache()
    assert load_mnist(tmp_path, device="cpu", n_val=10) is not first


def test_missing_data_error_lists_places_and_remedies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(data_mod, "SYSTEM_DATA_ROOT", tmp_path / "system")
    monkeypatch.setenv(data_mod.ENV_DATA_DIR, str(tmp_path / "env"))
    with pytest.raises(DataNotFoundError) as info:
        load_image_dataset("fashion-mnist", device="cpu")
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    for place in (
        tmp_path / "env",
        tmp_path / "env" / "fashion-mnist",
        Path(".data") / "fashion-mnist",
        tmp_path / "system" / "fashion-mnist",
    ):
        assert f"  - {place}\n" in message
    for remedy in ("apt-get install dataset-fashion-mnist", "data_dir=", "download=True"):
        assert remedy in message
    assert "train-images-idx3-ubyte.gz" in message


def test_missing_data_error_words_other_options(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError) as info:
        load_mnist(tmp_path / "nowhere", device="cpu")
    error = info.value
    assert error.searched[0] == tmp_path / "nowhere"
    # A command line names its flags, one remedy a line; one it lacks (None) is left out.
    message = error.explain({"data_dir": "--data-dir ", "download": None})
    lines = message.splitlines()
    assert lines[0] == "mnist idx files not found. Looked in:"
    assert f"  - {tmp_path / 'nowhere'}" in lines
    assert "To provide the data:" in lines
    assert any(line.startswith("  - pass --data-dir <directory holding") for line in lines)
    assert "data_dir=" not in message and "download" not in message
    assert str(error) == error.explain()  # the library's own wording
    again = pickle.loads(pickle.dumps(error))  # crosses process boundaries intact
    assert str(again) == str(error) and again.searched == error.searched
    assert str(DataNotFoundError("no data")) == "no data"  # a plain message still works


def test_missing_explicit_dir_is_searched_alone(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError) as info:
        load_mnist(tmp_path / "nowhere", device="cpu")
    message = str(info.value)
    assert str(tmp_path / "nowhere") in message
    assert "/usr/share/datasets" not in message
    assert "apt-get" not in message  # No Debian package for MNIST.


def test_failed_download_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(tv_name: str, root: Path) -> None:
        raise OSError("network unreachable")

    monkeypatch.setattr(data_mod, "_download_torchvision", offline)
    with pytest.raises(DataNotFoundError, match="network unreachable"):
        load_mnist(tmp_path / "empty", device="cpu", download=True)


def test_an_earlier_download_is_found_without_download_true(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(data_mod, "SYSTEM_DATA_ROOT", tmp_path / "system")
    monkeypatch.chdir(tmp_path)
    write_fake_mnist(tmp_path / "cache" / "MNIST" / "raw")  # torchvision's layout
    found = data_mod.find_image_dir("mnist", cache_dir=tmp_path / "cache")
    assert found == (tmp_path / "cache" / "MNIST" / "raw").resolve()
    monkeypatch.setenv(data_mod.ENV_CACHE_DIR, str(tmp_path / "default"))
    write_fake_mnist(tmp_path / "default" / "mnist" / "MNIST" / "raw")
    assert load_mnist(device="cpu", n_val=10).source.startswith(str(tmp_path / "default"))
    text = tmp_path / "text-cache" / "input.txt"
    text.parent.mkdir()
    text.write_text("To be, or not to be, that is the question.\n" * 5)
    assert data_mod.find_tiny_shakespeare(cache_dir=text.parent) == text.resolve()


def test_missing_data_error_offers_only_remedies_that_can_help(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def offline(*args: object) -> None:
        raise OSError("network unreachable")

    monkeypatch.setattr(data_mod, "_download_torchvision", offline)
    monkeypatch.setattr(data_mod.urllib.request, "urlretrieve", offline)
    # download=True already failed: no advice to pass it; data_dir given: the variable is
    # not searched, so no advice to set it.
    for call in (
        lambda: load_mnist(tmp_path / "a", device="cpu", download=True),
        lambda: load_tiny_shakespeare(tmp_path / "b", download=True, cache_dir=tmp_path / "c"),
    ):
        with pytest.raises(DataNotFoundError) as info:
            call()
        message = str(info.value)
        assert "network unreachable" in message
        assert "download=True" not in message and data_mod.ENV_DATA_DIR not in message
    monkeypatch.chdir(tmp_path)  # Away from ../shared's copy.
    monkeypatch.delenv(data_mod.ENV_DATA_DIR, raising=False)
    with pytest.raises(DataNotFoundError) as info:
        load_tiny_shakespeare(device="cpu")
    assert "download=True" in str(info.value) and data_mod.ENV_DATA_DIR in str(info.value)


def test_tiny_shakespeare_path_is_a_file_or_a_directory_whatever_its_name(tmp_path: Path) -> None:
    text = "Now is the winter of our discontent.\n" * 5
    for file in (tmp_path / "corpus.text", tmp_path / "input", tmp_path / "SHAKESPEARE.TXT"):
        file.write_text(text)
        assert data_mod.find_tiny_shakespeare(file) == file.resolve()
    folder = tmp_path / "folder.txt"
    folder.mkdir()
    (folder / "input.txt").write_text(text)
    assert data_mod.find_tiny_shakespeare(folder) == (folder / "input.txt").resolve()


def test_workers_downloading_tiny_shakespeare_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 40
    both_writing = threading.Barrier(2)

    def slow_download(url: str, path: Path) -> None:  # two downloads overlap in time
        with open(path, "w") as f:
            f.write(text[:20])
            both_writing.wait(timeout=10)
            f.write(text[20:])

    monkeypatch.setattr(data_mod.urllib.request, "urlretrieve", slow_download)
    cache = tmp_path / "cache"
    found: list[Path | BaseException] = []

    def worker() -> None:
        try:
            found.append(data_mod.find_tiny_shakespeare(cache / "input.txt", download=True))
        except BaseException as e:  # reported below
            found.append(e)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert found == [cache.resolve() / "input.txt"] * 2
    assert (cache / "input.txt").read_text() == text
    assert [p.name for p in cache.iterdir()] == ["input.txt"]  # no partial file left

    def offline(url: str, path: Path) -> None:
        Path(path).write_text("half")
        raise OSError("connection reset")

    monkeypatch.setattr(data_mod.urllib.request, "urlretrieve", offline)
    with pytest.raises(DataNotFoundError, match="connection reset"):
        data_mod.find_tiny_shakespeare(tmp_path / "other" / "input.txt", download=True)
    assert list((tmp_path / "other").iterdir()) == []


def test_image_loader_validates_arguments(tmp_path: Path) -> None:
    write_fake_mnist(tmp_path)
    with pytest.raises(ValueError, match="max_train"):
        load_mnist(tmp_path, device="cpu", max_train=0)
    with pytest.raises(ValueError, match="n_val"):
        load_mnist(tmp_path, device="cpu", n_val=60)
    with pytest.raises(ValueError, match="name"):
        load_image_dataset("cifar", tmp_path)
    with pytest.raises(ValueError, match=r"`split_seed` must be an integer in \[-9"):
        load_mnist(tmp_path, device="cpu", n_val=10, split_seed=1.5)
    assert load_mnist(tmp_path, device="cpu", n_val=10, split_seed=1.0) is load_mnist(
        tmp_path, device="cpu", n_val=10, split_seed=1
    )  # An integral float is the same seed (and the same cache entry).
    with pytest.raises(ValueError, match=r"`seed` must be an integer in \[-9"):
        make_synthetic(n=30, seed=1.5, device="cpu")


def test_text_splits_vocab_and_split() -> None:
    text = "hello world, hello optuna\n" * 10
    splits = make_text_splits(text, "cpu")
    assert splits.chars == sorted(set(text))
    assert len(splits.train) == int(len(text) * 0.9)
    assert len(splits.train) + len(splits.val) == len(text)
    assert splits.decode(torch.cat([splits.train, splits.val])) == text
    assert splits.encode("hello") == [splits.stoi[c] for c in "hello"]
    assert splits.train.dtype == torch.int64


@needs_shakespeare
def test_tiny_shakespeare_loader() -> None:
    splits = load_tiny_shakespeare(SHAKESPEARE, device="cpu")
    text = SHAKESPEARE.read_text(encoding="utf-8")
    assert splits.vocab_size == 65
    assert len(splits.train) + len(splits.val) == len(text)
    assert math.isclose(len(splits.train) / len(text), 0.9, abs_tol=1e-5)
    assert splits.decode(splits.train[:14]) == text[:14]
    assert load_tiny_shakespeare(SHAKESPEARE.parent, device="cpu") is splits


def test_missing_text_error(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError) as info:
        load_tiny_shakespeare(tmp_path / "missing.txt", device="cpu")
    message = str(info.value)
    assert str(tmp_path / "missing.txt") in message
    assert "download=True" in message and "data_path=" in message


def test_synthetic_is_deterministic_and_learnable() -> None:
    a = make_synthetic(n=600, n_features=8, n_classes=3, seed=1, device="cpu")
    b = make_synthetic(n=600, n_features=8, n_classes=3, seed=1, device="cpu")
    c = make_synthetic(n=600, n_features=8, n_classes=3, seed=2, device="cpu")
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.val_y, b.val_y)
    assert not torch.equal(a.train_x, c.train_x)
    assert (len(a.train_y), len(a.val_y), len(a.test_y)) == (360, 120, 120)
    assert a.input_shape == (8,) and a.n_classes == 3
    # Nearest class mean (fitted on train) classifies validation well above chance.
    means = torch.stack([a.train_x[a.train_y == k].mean(0) for k in range(3)])
    accuracy = (torch.cdist(a.val_x, means).argmin(1) == a.val_y).float().mean()
    assert accuracy > 0.8


def test_synthetic_validates_arguments() -> None:
    with pytest.raises(ValueError, match="n_classes"):
        make_synthetic(n_classes=1)
    with pytest.raises(ValueError, match="val_fraction"):
        make_synthetic(val_fraction=0.0)


def test_loaders_accept_numpy_and_integral_float_sizes(tmp_path: Path) -> None:
    write_fake_mnist(tmp_path)
    splits = load_mnist(tmp_path, device="cpu", n_val=np.int64(10), max_train=20.0)
    assert (len(splits.train_y), len(splits.val_y)) == (20, 10)
    blobs = make_synthetic(n=np.int64(100), n_features=4.0, n_classes=np.int32(3), device="cpu")
    assert blobs.input_shape == (4,) and blobs.n_classes == 3 and type(blobs.n_classes) is int


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: load_mnist(d, device="cpu", n_val=60), r"`n_val` must be in \[1, 59\]"),
        (lambda d: load_mnist(d, device="cpu", n_val=2.5), r"`n_val` must be an integer >= 1"),
        (lambda d: load_mnist(d, device="cpu", max_test=0), r"`max_test` must be None or an"),
        (lambda d: load_image_dataset("cifar", d), r"`name` must be one of \('fashion-mnist'"),
        (lambda d: make_synthetic(spread=math.nan), r"`spread` must be a finite number > 0"),
        (lambda d: make_synthetic(n=True), r"`n` must be an integer >= 3, got True\."),
        (lambda d: make_synthetic(val_fraction=0.5, test_fraction=0.5), r"`test_fraction`"),
        (lambda d: make_text_splits("abc", "cpu", val_fraction=1.0), r"`val_fraction` must be"),
    ],
)
def test_data_arguments_are_refused_with_one_wording(
    tmp_path: Path, make: Callable[[Path], object], message: str
) -> None:
    write_fake_mnist(tmp_path)
    with pytest.raises(ValueError, match=message):
        make(tmp_path)


def test_an_explicit_text_path_is_searched_alone_even_with_a_cached_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "input.txt").write_text("To be, or not to be, that is the question.\n" * 5)
    with pytest.raises(DataNotFoundError):
        data_mod.find_tiny_shakespeare(tmp_path / "my_corpus_typo.txt", cache_dir=cache)
    # With download=True, the download goes to that path, not to the cache.
    fetched: list[Path] = []
    monkeypatch.setattr(
        data_mod.urllib.request,
        "urlretrieve",
        lambda url, path: (fetched.append(Path(path)), Path(path).write_text("Thou art.\n")),
    )
    path = tmp_path / "mine" / "corpus.txt"
    assert data_mod.find_tiny_shakespeare(path, download=True, cache_dir=cache) == path.resolve()
    assert fetched and fetched[0].parent == path.parent
