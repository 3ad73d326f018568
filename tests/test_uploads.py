"""Untrusted uploads (SECURITY.md items 1-8, 15) through the loader, and MNIST-style preprocessing."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data import uploads
from data.images import DatasetUnavailable
from data.uploads import UploadError, decode_image, extract_image_zip, preprocess_gray, read_limited


def png(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def digit_image(size: int = 200, box: tuple[int, int, int, int] = (20, 30, 60, 110)) -> Image.Image:
    """A dark '1'-like bar on a white page, small and off-centre."""
    a = np.full((size, size), 255, np.uint8)
    x0, y0, x1, y1 = box
    a[y0:y1, x0:x1] = 0
    return Image.fromarray(a, "L")


# ------------------------------------------------------------------ 1. size limit, bounded memory


class Endless(io.RawIOBase):
    """A stream without a length (like a chunked upload) that never ends; counts what was read."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = 1 << 20 if n is None or n < 0 else n
        self.read_bytes += n
        return b"\x89PNG" + b"\0" * (n - 4) if n >= 4 else b"\0" * n


def test_oversized_stream_is_refused_after_reading_just_past_the_limit() -> None:
    stream = Endless()
    with pytest.raises(UploadError, match="larger than the limit of 2 MB"):
        read_limited(stream, max_bytes=2 * 2**20)
    assert stream.read_bytes <= 2 * 2**20 + 1  # bounded: never read (much) past the cap


def test_oversized_bytes_are_refused() -> None:
    with pytest.raises(UploadError, match="larger than the limit"):
        decode_image(b"\x89PNG" + b"0" * 2000, max_bytes=1000)


# ------------------------------------------------------------------ 2. non-image by content


def test_non_image_renamed_png_is_rejected_by_content() -> None:
    with pytest.raises(UploadError, match="not an image this app reads"):
        decode_image(b"%PDF-1.7 not really an image\n" * 10, "report.png")


def test_svg_and_tiff_are_not_accepted_formats() -> None:
    tiff = png(Image.new("RGB", (4, 4)), "TIFF")
    with pytest.raises(UploadError, match="not an image this app reads"):
        decode_image(tiff, "x.png")


# ------------------------------------------------------------------ 3. decompression bomb


def test_decompression_bomb_is_refused_before_decoding() -> None:
    # a 1-bit 12000x12000 PNG compresses to a few kB but would be 144 megapixels decoded
    bomb = png(Image.new("1", (12000, 12000)), optimize=True)
    assert len(bomb) < 100_000
    with pytest.raises(UploadError, match="image too large"):
        decode_image(bomb, "bomb.png")


def test_pixel_cap_is_configurable() -> None:
    with pytest.raises(UploadError, match="image too large"):
        decode_image(png(Image.new("RGB", (100, 100))), max_pixels=5000)


# ------------------------------------------------------------------ 4. truncated / corrupt


def test_truncated_image_that_passes_verify_fails_cleanly() -> None:
    rng = np.random.default_rng(0)
    full = png(Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)), "JPEG", quality=90)
    cut = full[: len(full) // 2]
    Image.open(io.BytesIO(cut)).verify()  # the header is fine: verify() does not notice
    with pytest.raises(UploadError, match="truncated or corrupt"):
        decode_image(cut, "cut.jpg")


# ------------------------------------------------------------------ 5. odd modes, EXIF, animation, 1x1


@pytest.mark.parametrize(
    ("img", "fmt"),
    [
        (Image.new("CMYK", (10, 8), (0, 255, 255, 0)), "JPEG"),
        (Image.new("P", (10, 8), 3), "PNG"),
        (Image.fromarray(np.full((8, 10), 40000, np.uint16)), "PNG"),
        (Image.new("LA", (10, 8), (0, 0)), "PNG"),
        (Image.new("RGBA", (10, 8), (255, 0, 0, 128)), "WEBP"),
        (Image.new("1", (10, 8), 1), "BMP"),
    ],
    ids=["cmyk", "palette", "16bit", "gray-alpha", "rgba-webp", "1bit-bmp"],
)
def test_odd_modes_become_rgb(img: Image.Image, fmt: str) -> None:
    out = decode_image(png(img, fmt), f"x.{fmt.lower()}")
    assert out.image.mode == "RGB" and out.image.size == (10, 8)


def test_sixteen_bit_is_scaled_not_clipped() -> None:
    out = decode_image(png(Image.fromarray(np.full((4, 4), 32768, np.uint16))))
    assert 120 <= np.asarray(out.image)[0, 0, 0] <= 135  # half of full scale, not saturated 255
    assert any("8 bits" in n for n in out.notes)


def test_transparent_drawing_is_composited_on_white() -> None:
    out = decode_image(png(Image.new("RGBA", (5, 5), (0, 0, 0, 0))))
    assert np.asarray(out.image).min() == 255


def test_exif_rotation_is_applied() -> None:
    img = Image.new("RGB", (40, 20), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    out = decode_image(png(img, "JPEG", exif=exif.tobytes()), "photo.jpg")
    assert out.image.size == (20, 40)
    assert any("EXIF" in n for n in out.notes)


def test_animated_gif_uses_the_first_frame() -> None:
    frames = [Image.new("L", (6, 6), 0), Image.new("L", (6, 6), 255)]
    data = png(frames[0], "GIF", save_all=True, append_images=frames[1:])
    out = decode_image(data, "anim.gif")
    assert np.asarray(out.image).max() == 0
    assert any("first frame" in n for n in out.notes)


def test_one_pixel_image_is_fine_and_preprocesses() -> None:
    out = decode_image(png(Image.new("L", (1, 1), 0)))
    prep = preprocess_gray(out.image)
    assert prep.x.shape == (1, 28, 28)


# ------------------------------------------------------------------ 15. empty


@pytest.mark.parametrize("data", [b"", b"   \n", b"\x00" * 50])
def test_empty_file_is_refused(data: bytes) -> None:
    with pytest.raises(UploadError, match="empty"):
        decode_image(data, "empty.png")


def test_blank_drawing_is_marked_empty() -> None:
    prep = preprocess_gray(Image.new("RGB", (200, 200), "white"))
    assert prep.empty and prep.x.max() == 0


# ------------------------------------------------------------------ MNIST-style preprocessing


def test_small_off_centre_digit_comes_out_centred_by_mass() -> None:
    prep = preprocess_gray(digit_image().convert("RGB"))
    x = prep.x[0]
    assert prep.inverted  # dark ink on a light page -> white on black like MNIST
    rows, cols = np.nonzero(x > 0.1)
    assert rows.max() - rows.min() + 1 == 20  # the long side fills the 20x20 box
    assert cols.max() - cols.min() + 1 == 10  # aspect ratio kept (40x80 bar)
    yy, xx = np.indices(x.shape)
    cy, cx = (yy * x).sum() / x.sum(), (xx * x).sum() / x.sum()
    assert abs(cy - 14.0) <= 0.5 and abs(cx - 14.0) <= 0.5
    assert [s[0] for s in prep.steps][:3] == ["upload", "grayscale", "inverted (light background)"]


def test_dark_background_is_not_inverted() -> None:
    a = np.zeros((50, 50), np.uint8)
    a[10:40, 20:26] = 255
    prep = preprocess_gray(Image.fromarray(a, "L").convert("RGB"))
    assert not prep.inverted and prep.x.max() > 0.9


def test_colour_photo_is_measured_as_colourful() -> None:
    from skimage import data as skdata

    assert uploads.colourfulness(Image.fromarray(skdata.chelsea())) > 0.12
    assert uploads.colourfulness(digit_image().convert("RGB")) < 0.01


# ------------------------------------------------------------------ 6-8. zips of class folders


def make_zip(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in entries.items():
            if name.endswith("/"):
                zf.writestr(zipfile.ZipInfo(name), b"")
            else:
                zf.writestr(name, data)
    return buf.getvalue()


def tiny_png(value: int = 0) -> bytes:
    return png(Image.new("L", (8, 8), value))


def good_entries(classes: tuple[str, ...] = ("cat", "dog"), n: int = 4) -> dict[str, bytes]:
    return {f"{c}/{i}.png": tiny_png(40 * k + i) for k, c in enumerate(classes) for i in range(n)}


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_good_zip_is_extracted_with_generated_names(tmp_path: Path) -> None:
    rep = extract_image_zip(make_zip(good_entries()), tmp_path / "store")
    assert rep.ok, rep.problems
    assert rep.classes == {"cat": 4, "dog": 4}
    meta = uploads.read_manifest(rep.folder)
    assert [c["name"] for c in meta["classes"]] == ["cat", "dog"]
    names = {p.name for p in files_under(rep.folder)}
    assert names == {"00000.png", "00001.png", "00002.png", "00003.png", uploads.MANIFEST}


def test_wrapping_root_folder_is_stripped(tmp_path: Path) -> None:
    entries = {f"pets/{k}": v for k, v in good_entries().items()}
    rep = extract_image_zip(make_zip(entries), tmp_path)
    assert rep.ok and set(rep.classes) == {"cat", "dog"}


@pytest.mark.parametrize("evil", ["../evil.png", "/etc/evil.png", "C:\\evil.png", "cat/../../evil.png", "..\\evil.png"])
def test_zip_slip_never_writes_outside(tmp_path: Path, evil: str) -> None:
    store = tmp_path / "store"
    entries = {**good_entries(), evil: tiny_png()}
    rep = extract_image_zip(make_zip(entries), store)
    assert rep.ok
    assert any("unsafe path" in r for _, r in rep.skipped)
    outside = files_under(tmp_path) - files_under(store)
    assert not outside, outside
    assert not list(tmp_path.rglob("evil*"))


def test_zip_bomb_by_ratio_is_stopped(tmp_path: Path) -> None:
    entries = {**good_entries(), "cat/bomb.png": b"\0" * (20 * 2**20)}
    rep = extract_image_zip(make_zip(entries), tmp_path)
    assert not rep.ok and "compression ratio" in rep.problems[0]
    assert files_under(tmp_path) == set()  # nothing half-written is left


def test_zip_bomb_by_total_size_is_stopped_while_streaming(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    noisy = png(Image.fromarray(rng.integers(0, 255, (200, 200), dtype=np.uint8)))  # incompressible
    entries = {f"c{k}/{i}.png": noisy for k in range(2) for i in range(10)}
    rep = extract_image_zip(make_zip(entries, zipfile.ZIP_STORED), tmp_path, max_total=len(noisy) * 5)
    assert not rep.ok and "expands to more than" in rep.problems[0]
    assert files_under(tmp_path) == set()


def test_too_many_entries(tmp_path: Path) -> None:
    rep = extract_image_zip(make_zip(good_entries(n=6)), tmp_path, max_entries=5)
    assert not rep.ok and "entries" in rep.problems[0]


def test_total_cap_counts_streamed_bytes_across_entries(tmp_path: Path) -> None:
    """Each entry is under every cap; together they exceed the total, counted as they are decompressed."""
    data = bytearray(make_zip({"a/1.png": b"\0" * 50_000, "b/1.png": b"\0" * 50_000}))
    rep = extract_image_zip(bytes(data), tmp_path, max_total=60_000, max_ratio=10_000)
    assert not rep.ok and "expands" in rep.problems[0]


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ({"1.png": tiny_png(), "2.png": tiny_png()}, "no images in class folders"),
        ({f"only/{i}.png": tiny_png(i) for i in range(5)}, "at least two classes"),
        ({"__MACOSX/cat/._1.png": b"junk", ".DS_Store": b"junk"}, "no images in class folders"),
        ({"cat/notes.txt": b"hello", "dog/x.png": b"not a png"}, "no images in class folders"),
    ],
    ids=["no-folders", "one-class", "macos-junk-only", "non-images"],
)
def test_bad_layouts_are_reported(tmp_path: Path, entries: dict[str, bytes], problem: str) -> None:
    rep = extract_image_zip(make_zip(entries), tmp_path)
    assert not rep.ok
    assert any(problem in p for p in rep.problems), rep.problems


def test_validation_report_lists_skipped_files_and_small_classes(tmp_path: Path) -> None:
    entries = {
        **good_entries(("cat", "dog", "bird")),
        "__MACOSX/cat/._0.png": b"junk",
        "cat/readme.txt": b"hello",
        "cat/empty.png": b"",
        "fish/1.png": tiny_png(),  # too few images
        "empty_class/": b"",
        "bad\x07name/1.png": tiny_png(),
    }
    rep = extract_image_zip(make_zip(entries), tmp_path)
    assert rep.ok, rep.problems
    assert rep.classes == {"cat": 4, "dog": 4, "bird": 4}
    reasons = dict(rep.skipped)
    assert "macOS" in reasons["__MACOSX/cat/._0.png"]
    assert "not an image" in reasons["cat/readme.txt"]
    assert "empty" in reasons["cat/empty.png"]
    assert "odd class folder name" in reasons["bad\x07name/1.png"]
    assert any("'fish'" in w for w in rep.warnings)
    assert any("'empty_class'" in w for w in rep.warnings)


@pytest.mark.parametrize("data", [b"", b"PK\x03\x04 broken", b"not a zip at all"])
def test_empty_or_broken_zip(tmp_path: Path, data: bytes) -> None:
    rep = extract_image_zip(data, tmp_path)
    assert not rep.ok and rep.problems


def test_loader_refuses_folders_it_did_not_validate(tmp_path: Path) -> None:
    from data.custom import load_custom

    (tmp_path / "cat").mkdir()
    with pytest.raises(DatasetUnavailable, match="not a validated image dataset"):
        load_custom(path=tmp_path)


def test_custom_loader_splits_a_validated_zip(tmp_path: Path) -> None:
    from data.custom import load_custom

    rep = extract_image_zip(make_zip(good_entries(("a", "b", "c"), n=6)), tmp_path)
    split = load_custom(seed=0, path=rep.folder, image_size=16)
    assert split.X_train.shape[1:] == (3, 16, 16)
    assert len(split.y_train) + len(split.y_test) == 18
    assert set(split.y_test) == {0, 1, 2}  # every class in the test split
    assert split.class_names == ["a", "b", "c"]
