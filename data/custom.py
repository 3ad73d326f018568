"""The custom image-folder dataset: a validated upload (see data/uploads.py) as a train/test split.

The folder is one written by `data.uploads.extract_image_zip` (it holds a manifest); any other path is
refused. Images are fitted to `image_size` x `image_size` RGB by the same function the Predict tab uses.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.model_selection import train_test_split

from data.images import DatasetUnavailable, ImageSplit, _with_fast_path, fast_path
from data.uploads import (
    DATASET_LIFETIME_S,
    InputSpec,
    UploadError,
    decode_image,
    default_custom_root,
    preprocess,
    read_manifest,
    touch_dataset,
)

DEFAULT_IMAGE_SIZE = 64
TEST_FRACTION = 0.2
DATASET_ID = re.compile(r"[0-9a-f]{16}")


def load_folder_arrays(
    path: str | Path, image_size: int = DEFAULT_IMAGE_SIZE
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """All images of a validated folder as (N, 3, S, S) floats in [0, 1], labels, class names."""
    folder = Path(path)
    meta = read_manifest(folder)
    spec = InputSpec("rgb", int(image_size))
    X, y, names = [], [], []
    for k, cls in enumerate(meta["classes"]):
        names.append(str(cls["name"]))
        for f in sorted((folder / cls["dir"]).glob("*.png")):
            # our own re-encoded PNGs, still decoded through the one safe path
            X.append(preprocess(decode_image(f.read_bytes(), f.name).image, spec).x)
            y.append(k)
    if not X:
        raise UploadError(f"no images in {folder}")
    return np.stack(X).astype(np.float32), np.asarray(y, np.int64), names


def availability() -> tuple[bool, str]:
    """Always trainable once a zip was uploaded (the loader checks the folder itself)."""
    return True, "your upload (Transfer tab): validated zip of class folders"


def resolve(path: str | Path | None = None, dataset_id: str | None = None) -> Path:
    """The folder of a validated upload, by path or by its id (the zip's digest, kept in run reports)."""
    if dataset_id:
        if not DATASET_ID.fullmatch(str(dataset_id)):
            raise DatasetUnavailable(f"not a dataset id: {dataset_id!r}")
        folder = default_custom_root() / str(dataset_id)
    elif path:
        folder = Path(path)
    else:
        raise DatasetUnavailable("the custom dataset needs a folder: upload a zip of class folders first")
    if not folder.is_dir():
        raise DatasetUnavailable(
            f"the uploaded dataset {folder.name} is no longer on this server (uploaded datasets are kept "
            f"{DATASET_LIFETIME_S // 3600} hours after their last use, within a disk quota); upload it again"
        )
    touch_dataset(folder)  # in use: the lifetime and the quota's eviction count from now
    return folder


def load_custom(
    seed: int = 0,
    max_samples: int = 0,
    path: str | Path | None = None,
    image_size: int = DEFAULT_IMAGE_SIZE,
    dataset_id: str | None = None,
) -> ImageSplit:
    """A validated folder of class images -> stratified 80 / 20 split (at least one test image per class)."""
    folder = resolve(path, dataset_id)
    try:
        X, y, names = load_folder_arrays(folder, image_size)
    except UploadError as exc:
        raise DatasetUnavailable(str(exc)) from exc
    n_classes = len(names)
    n_test = max(n_classes, round(len(y) * TEST_FRACTION))
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=n_test, random_state=seed, stratify=y)
    n_train = len(y_tr)
    X_tr, y_tr, info = fast_path(X_tr, y_tr, max_samples, seed)  # training images only; stated in the note
    split = ImageSplit(
        "custom", X_tr, y_tr, X_te, y_te, names,
        source=f"your upload ({len(y)} images in {n_classes} class folders)",
        split_note=f"stratified {n_train} / {len(y_te)}, seed {seed}; images fitted to {image_size}x{image_size} RGB",
        extra={"path": str(folder), "image_size": int(image_size)},
    )  # fmt: skip
    return _with_fast_path(split, info)


def sample_zip(per_class: int = 100, seed: int = 0) -> tuple[bytes, str]:
    """A zip of class folders built from bundled data, to try transfer learning offline.

    Fashion-MNIST (10 clothing classes, from its official test split) when the Debian files are here, else
    MNIST-5k digits; `per_class` images per class as 28x28 PNGs. Returns (zip bytes, description).
    """
    from data.images import fashion_folder, load_fashion_mnist, load_mnist_5k

    if fashion_folder() is not None:
        split = load_fashion_mnist(seed=seed)
        X, y, names = split.X_test, split.y_test, split.class_names
        what = f"Fashion-MNIST test images, {per_class} per class"
    else:
        split = load_mnist_5k(seed=seed)
        X, y, names = split.X_test, split.y_test, split.class_names
        what = f"MNIST digits (Fashion-MNIST is not installed), {per_class} per class"
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for k, name in enumerate(names):
            folder = name.replace("/", " or ")
            idx = rng.permutation(np.flatnonzero(y == k))[:per_class]
            for j, i in enumerate(idx):
                png = io.BytesIO()
                Image.fromarray((X[i, 0] * 255).round().astype(np.uint8), "L").save(png, format="PNG")
                zf.writestr(f"sample/{folder}/{j:04d}.png", png.getvalue())
    return buf.getvalue(), what
