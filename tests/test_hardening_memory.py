"""Small images, large memory (SECURITY.md items 1, 23, 28, 29): decoded pixels bounded per image, per request
and per zip; files per upload capped; extracted datasets under a disk quota and a lifetime; all writable
state under one configurable root; duplicate upload names on the Predict page."""

from __future__ import annotations

import functools
import io
import json
import os
import pickle
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from data import guard, paths, uploads
from tests.conftest import ROOT

APP = str(ROOT / "app.py")
BIG = 6300  # 39.7 megapixels, under the 40-megapixel cap per image


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def drawing(side: int) -> Image.Image:
    """A thick dark '7' on white paper, drawn at any size (same shape)."""
    img = Image.new("RGB", (side, side), "white")
    s = side / BIG
    ImageDraw.Draw(img).line([(2000 * s, 1000 * s), (4200 * s, 1000 * s), (3000 * s, 5300 * s)], fill="black",
                             width=max(1, round(500 * s)))  # fmt: skip
    return img


@pytest.fixture(scope="module")
def big_png(tmp_path_factory) -> Path:
    """A 6300x6300 PNG of about 140 KB that decodes to 119 MB of RGB."""
    path = tmp_path_factory.mktemp("big") / "big.png"
    path.write_bytes(png(drawing(BIG)))
    return path


def noise_png(seed: int, side: int = 24) -> bytes:
    rng = np.random.default_rng(seed)
    return png(Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)))


def make_zip(classes: dict[str, list[bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for c, imgs in classes.items():
            for i, data in enumerate(imgs):
                zf.writestr(f"{c}/{i}.png", data)
    return buf.getvalue()


def small_zip(seed: int) -> bytes:
    return make_zip({"a": [noise_png(seed * 100 + i) for i in range(4)],
                     "b": [noise_png(seed * 100 + 50 + i) for i in range(4)]})  # fmt: skip


def image_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=240).run()
    at.switch_page("pages/image.py").run()
    assert not at.exception
    return at


def pretrained(at: AppTest) -> AppTest:
    at.radio(key="predict.source").set_value("ImageNet-pretrained EfficientNet-Lite0").run()
    assert not at.exception, at.exception
    return at


def top_tables(at: AppTest) -> list:
    """The top-5 ImageNet label tables of the pretrained section, one per image."""
    return [d for d in at.dataframe if list(d.value.columns) == ["label", "probability"]]


# ------------------------------------------------------------------------------ memory per image (item 29)

MEASURE = r"""
import json, resource, sys, tracemalloc
from data.uploads import decode_image, input_spec, preprocess

raw = open(sys.argv[1], "rb").read()
def peak_mb():
    # this process's own high-water mark (ru_maxrss would carry the forking parent's over exec on Linux)
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) / 1024
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
base = peak_mb()
tracemalloc.start()
kept = []  # three uploads, kept as three sessions would keep them
for i in range(3):
    img = decode_image(raw, f"big{i}.png")
    kept.append((img, preprocess(img.image, input_spec("mnist-5k"))))
print(json.dumps({
    "rss_mb": peak_mb() - base,
    "traced_peak_mb": tracemalloc.get_traced_memory()[1] / 2**20,
    "size": kept[0][0].image.size,
    "original": kept[0][0].original_size,
    "largest_step": max(max(a.shape[:2]) for _, a in kept[0][1].steps),
    "x": kept[0][1].x.tolist(),
}))
"""


def test_three_huge_pngs_decode_and_preprocess_in_bounded_memory(big_png) -> None:
    """Before: +1.27 GB peak per 6300x6300 PNG, +3.39 GB for three (full-size float copies of every step)."""
    out = subprocess.run([sys.executable, "-c", MEASURE, str(big_png)], capture_output=True, text=True, cwd=ROOT,
                         timeout=300, check=True)  # fmt: skip
    m = json.loads(out.stdout.strip().splitlines()[-1])
    assert m["original"] == [BIG, BIG]
    assert max(m["size"]) <= uploads.MAX_WORK_SIDE  # shrunk while decoding
    assert m["largest_step"] <= uploads.STEP_SIDE  # the step images kept for the page are display-sized
    assert m["traced_peak_mb"] < 100, m  # numpy / Python allocations
    assert m["rss_mb"] < 350, m  # everything, Pillow's decoded buffers included (one 119 MB decode at a time)
    # the model input is what the same drawing gives at a normal size
    small = uploads.preprocess(uploads.decode_image(png(drawing(630))).image, uploads.input_spec("mnist-5k")).x
    assert np.corrcoef(np.asarray(m["x"]).ravel(), small.ravel())[0, 1] > 0.97


def test_normal_size_images_are_not_resampled() -> None:
    """Up to 1024 pixels a side nothing changes: the image, and so the MNIST-style preprocessing, is the upload's."""
    for side in (28, 300, 1024):
        img = drawing(side)
        dec = uploads.decode_image(png(img))
        assert dec.image.size == img.size and np.array_equal(np.asarray(dec.image), np.asarray(img))
        assert not any("shrunk" in n for n in dec.notes)


@pytest.mark.parametrize("mode", ["P", "RGBA", "L", "I;16", "CMYK-JPEG"])
def test_every_mode_is_shrunk_to_the_same_picture(mode: str) -> None:
    """Shrinking while decoding works for palette, alpha, gray, 16-bit and JPEG (draft) uploads alike."""
    rgb = drawing(3000)
    if mode == "CMYK-JPEG":
        buf = io.BytesIO()
        rgb.convert("CMYK").save(buf, format="JPEG", quality=95)
        data = buf.getvalue()
    elif mode == "I;16":
        data = png(Image.fromarray(np.asarray(rgb.convert("L"), np.uint16) * 257))
    else:
        data = png(rgb.convert(mode))
    dec = uploads.decode_image(data, "x")
    assert dec.original_mode == {"CMYK-JPEG": "CMYK"}.get(mode, mode)
    assert dec.original_size == (3000, 3000) and dec.image.size == (1024, 1024) and dec.image.mode == "RGB"
    assert any("shrunk from 3000x3000" in n for n in dec.notes)
    ref = np.asarray(rgb.resize((1024, 1024), Image.Resampling.LANCZOS).convert("L"), np.float32)
    assert np.abs(np.asarray(dec.image.convert("L"), np.float32) - ref).mean() < 6


def test_exif_rotation_survives_shrinking() -> None:
    img = Image.new("RGB", (3000, 1500), "white")
    ImageDraw.Draw(img).rectangle((0, 0, 300, 300), fill="black")  # a black corner, top left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes())
    dec = uploads.decode_image(buf.getvalue())
    assert dec.image.size == (512, 1024)  # upright: portrait
    a = np.asarray(dec.image.convert("L"))
    assert a[:40, -40:].mean() < 60 and a[:40, :40].mean() > 200  # the corner moved to the top right


# ----------------------------------------------------------- files and pixels per request (items 1, 29)


def test_files_per_upload_are_capped_with_a_message() -> None:
    """23 files in one upload: the first 20 are processed, the other 3 refused in one message (not decoded)."""
    at = pretrained(image_page())
    files = [(f"p{i:02d}.png", noise_png(i, 8), "image/png") for i in range(23)]
    at.file_uploader(key="pretrained.files").set_value(files).run()
    assert not at.exception, at.exception
    errors = [e.value.replace("\\", "") for e in at.error]  # file names are shown Markdown-escaped
    assert len(errors) == 1, errors
    assert "3 more file(s) not processed (p20.png, p21.png, p22.png)" in errors[0] and "at most 20 images" in errors[0]
    assert len(top_tables(at)) == 20


def test_pixels_per_request_are_capped_before_decoding(big_png) -> None:
    """Two 39.7-MP images fit in the 100-MP request budget; the third is refused undecoded; a small one after it
    still gets its turn."""
    at = pretrained(image_page())
    raw = big_png.read_bytes()
    files = [(f"big{i}.png", raw, "image/png") for i in range(3)] + [("small.png", noise_png(1, 32), "image/png")]
    at.file_uploader(key="pretrained.files").set_value(files).run()
    assert not at.exception, at.exception
    errors = [e.value.replace("\\", "") for e in at.error]
    assert len(errors) == 1 and "big2.png" in errors[0] and "megapixels in all" in errors[0], errors
    assert "Upload fewer or smaller images" in errors[0] and "Traceback" not in errors[0]
    assert len(top_tables(at)) == 3  # big0, big1, small


def test_duplicate_file_names_in_the_imagenet_section() -> None:
    """Two uploads named alike used to raise StreamlitDuplicateElementKey; now each gets its own result."""
    at = pretrained(image_page())
    files = [("same.png", noise_png(1, 16), "image/png"), ("same.png", noise_png(2, 16), "image/png")]
    at.file_uploader(key="pretrained.files").set_value(files).run()
    assert not at.exception, at.exception
    assert len(top_tables(at)) == 2
    explain = [b for b in at.button if str(b.key or "").startswith("pretrained.explain.")]
    assert len(explain) == 2 and len({b.key for b in explain}) == 2


def test_busy_server_is_a_message_not_a_wait(monkeypatch) -> None:
    """Every upload slot taken: the Predict uploader and the zip uploader say so and the page keeps serving."""
    import pages.predict_ui as predict_ui

    monkeypatch.setattr(predict_ui, "heavy_slot", functools.partial(guard.heavy_slot, wait=0.2))
    at = pretrained(image_page())
    held = 0
    try:
        while guard._SLOTS.acquire(timeout=0.1):
            held += 1
        at.file_uploader(key="pretrained.files").set_value(("a.png", noise_png(3, 8), "image/png")).run()
        at.file_uploader(key="transfer.zip").set_value(("d.zip", small_zip(7), "application/zip")).run()
    finally:
        for _ in range(held):
            guard._SLOTS.release()
    assert held == guard.HEAVY_SLOTS
    assert not at.exception, at.exception
    busy = [e.value for e in at.error if "server is busy" in e.value]
    assert len(busy) == 2 and any("image upload" in b for b in busy) and any("zip" in b for b in busy), busy


# ------------------------------------------------------------------- zips: pixels, quota, lifetime (item 29)


def test_zip_pixel_cap_stops_the_extraction(monkeypatch, tmp_path) -> None:
    """Small files that decode to many pixels: refused once the zip's decoded pixels pass the cap, nothing kept."""
    monkeypatch.setenv("NEURALBENCH_RUNS", str(tmp_path))
    monkeypatch.delenv("NEURALBENCH_CACHE", raising=False)
    monkeypatch.setattr(uploads, "MAX_ZIP_PIXELS", 20_000_000)
    big = png(drawing(2000))  # 4 MP each, a few KB
    data = make_zip({"sevens": [big] * 4, "more": [big] * 4})  # 32 MP in all
    at = image_page()
    at.file_uploader(key="transfer.zip").set_value(("pixels.zip", data, "application/zip")).run()
    assert not at.exception, at.exception
    errors = [e.value.replace("\\", "") for e in at.error]
    assert any("more than 20 megapixels once decoded" in e for e in errors), errors
    assert not any(b.key == "transfer.train" for b in at.button)
    custom = tmp_path / "cache" / "custom"
    assert custom.is_dir() and not list(custom.iterdir())  # nothing half-written left


def _datasets(root: Path) -> set[str]:
    return {p.name for p in root.iterdir()}


def test_disk_quota_removes_the_least_recently_used_dataset(tmp_path) -> None:
    root = tmp_path / "custom"
    a = uploads.extract_image_zip(small_zip(1), root)
    size = json.loads((a.folder / uploads.MANIFEST).read_text())["bytes"]
    assert a.ok and size > 0
    quota = int(2.5 * size)
    b = uploads.extract_image_zip(small_zip(2), root, quota=quota)
    now = time.time()
    os.utime(a.folder / uploads.MANIFEST, (now - 300, now - 300))
    os.utime(b.folder / uploads.MANIFEST, (now - 200, now - 200))
    from data.custom import resolve

    resolve(a.folder)  # A is used (trained on / predicted with): B is now the least recently used
    c = uploads.extract_image_zip(small_zip(3), root, quota=quota)
    assert b.ok and c.ok
    assert _datasets(root) == {a.digest, c.digest}
    # a dataset larger than the whole quota is refused, and nothing of it is left
    d = uploads.extract_image_zip(small_zip(4), root, quota=size // 2)
    assert not d.ok and any("more than the" in p and "keeps for uploaded datasets" in p for p in d.problems)
    assert not any(n.startswith(".incoming-") for n in _datasets(root)) and d.digest not in _datasets(root)


def test_datasets_past_their_lifetime_are_removed_at_the_next_extraction(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("NEURALBENCH_RUNS", str(tmp_path))
    monkeypatch.delenv("NEURALBENCH_CACHE", raising=False)
    root = uploads.default_custom_root()
    old = uploads.extract_image_zip(small_zip(5))
    assert old.ok and old.folder.parent == root
    from data.custom import resolve

    assert resolve(dataset_id=old.digest) == old.folder  # there while it lives
    stale = root / ".incoming-killed"
    stale.mkdir()
    (stale / "half.png").write_bytes(b"x")
    past = time.time() - uploads.DATASET_LIFETIME_S - 60
    os.utime(old.folder / uploads.MANIFEST, (past, past))  # unused for a day (resolve() above was a use)
    os.utime(stale, (past, past))
    new = uploads.extract_image_zip(small_zip(6))
    assert new.ok and _datasets(root) == {new.digest}
    from data.images import DatasetUnavailable

    with pytest.raises(DatasetUnavailable, match="no longer on this server"):
        resolve(dataset_id=old.digest)


def test_extracted_images_are_stored_small(tmp_path) -> None:
    """A 3000x2000 photo in a zip is kept with a 256-pixel shorter side (the models take at most 224)."""
    photo = png(drawing(3000).resize((3000, 2000)))
    rep = uploads.extract_image_zip(make_zip({"a": [photo] * 4, "b": [photo] * 4}), tmp_path / "custom")
    assert rep.ok
    sizes = {Image.open(p).size for p in rep.folder.rglob("*.png")}
    assert sizes == {(384, 256)}


# ------------------------------------------------------------------------ one root for all state (item 29)


def test_all_writable_state_follows_neuralbench_runs(monkeypatch, tmp_path) -> None:
    from bench.core import calibrate
    from bench.run import store as runs
    from bench.tasks.sentiment import estimators as bench_text
    from data import images, prices

    monkeypatch.setenv("NEURALBENCH_RUNS", str(tmp_path))
    monkeypatch.delenv("NEURALBENCH_CACHE", raising=False)
    assert paths.state_root() == tmp_path and paths.cache_dir() == tmp_path / "cache"
    for p in (uploads.default_custom_root(), Path(images.CACHE), Path(prices.PRICE_CACHE), Path(bench_text.CACHE),
              Path(runs.DEFAULT_DIR), calibrate.cache_path()):  # fmt: skip
        assert tmp_path in p.parents or p == tmp_path, p
    assert pickle.loads(pickle.dumps(images.CACHE / "x")) == tmp_path / "cache" / "x"  # a plain Path once pickled
    monkeypatch.setenv("NEURALBENCH_CACHE", str(tmp_path / "elsewhere"))
    assert Path(images.CACHE) == tmp_path / "elsewhere" and uploads.default_custom_root().parent.name == "elsewhere"
    if images.DEBIAN_FASHION.is_dir():  # read-only data outside the state root is still found
        assert images.fashion_folder() == images.DEBIAN_FASHION


def test_uploaded_zip_lands_under_the_state_root(monkeypatch, tmp_path) -> None:
    """Only NEURALBENCH_RUNS set, after the app was imported: the page's upload goes under it, not data/cache."""
    monkeypatch.setenv("NEURALBENCH_RUNS", str(tmp_path))
    monkeypatch.delenv("NEURALBENCH_CACHE", raising=False)
    at = image_page()
    at.file_uploader(key="transfer.zip").set_value(("mine.zip", small_zip(8), "application/zip")).run()
    assert not at.exception, at.exception
    ds = at.session_state["transfer.dataset"]
    assert ds["ok"], ds
    folder = Path(ds["folder"])
    assert folder.parent == tmp_path / "cache" / "custom" and (folder / uploads.MANIFEST).is_file()
    assert not (ROOT / "data" / "cache" / "custom" / ds["digest"]).exists()
