"""Untrusted images and zips of class folders: safe decoding, MNIST-style preprocessing, zip validation.

Everything a user uploads goes through here before any model sees it (see SECURITY.md items 1-8, 15):
sizes are capped while reading, images are recognised by content (Pillow), decompression bombs and
truncated files become `UploadError`s with a message meant for the user, odd modes (CMYK, palette,
16-bit, alpha, EXIF rotation, animated GIFs) are normalised to RGB, and zips are read entry by entry
with caps on entries, bytes and compression ratio; extracted files get generated names, so no path
from the zip is ever used on disk.

Memory and disk are bounded too (item 29): an image is shrunk while it is decoded (JPEG's draft mode, then
a band-by-band reduce for every other format) so nothing downstream ever holds more than
`MAX_WORK_SIDE` pixels on a side; one request decodes at most `MAX_FILES_PER_REQUEST` files and
`MAX_REQUEST_PIXELS` pixels; one zip at most `MAX_ZIP_PIXELS`; the extracted datasets share a disk quota
(`CUSTOM_QUOTA_BYTES`, least recently used removed first) and a lifetime (`DATASET_LIFETIME_S`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import struct
import tempfile
import time
import unicodedata
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from data.paths import cache_dir

MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # one image file
MAX_IMAGE_PIXELS = 40_000_000  # width * height after the header is read, before decoding
MIN_SIDE = 1
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
# Decoded images are shrunk to this longest side while decoding (the models take at most 224 pixels, the page
# shows the upload a few hundred pixels wide): a 40-megapixel upload costs one decode, never float copies of it.
MAX_WORK_SIDE = 1024
STEP_SIDE = 256  # the preprocessing steps kept for display
BAND_PIXELS = 4_000_000  # an image larger than MAX_WORK_SIDE is reduced in bands of about this many pixels
MAX_FILES_PER_REQUEST = 20  # images decoded for one request (uploads + drawing + camera + samples)
MAX_REQUEST_PIXELS = 100_000_000  # pixels decoded for one request, summed over its images

MAX_ZIP_BYTES = 200 * 1024 * 1024  # the zip file itself
MAX_ZIP_ENTRIES = 20_000
MAX_ZIP_UNCOMPRESSED = 500 * 1024 * 1024  # counted while streaming, not trusted from the headers
MAX_COMPRESSION_RATIO = 200  # per entry; real PNG/JPEG barely compress, bombs reach 1000x
MIN_IMAGES_PER_CLASS = 4
MAX_CLASSES = 100
MAX_CLASS_NAME = 64
MAX_ZIP_PIXELS = 2_000_000_000  # pixels decoded for one zip, summed over its images
ZIP_STORE_SIDE = 256  # extracted images keep at most this shorter side (the models take at most 224)
CUSTOM_QUOTA_BYTES = 2 * 1024**3  # every extracted dataset together; the least recently used go first
DATASET_LIFETIME_S = 24 * 3600  # an extracted dataset unused this long is removed at the next extraction
STALE_INCOMING_S = 3600  # a half-extracted folder left by a killed process
MANIFEST = "neuralbench-dataset.json"

Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS  # Pillow raises DecompressionBombError beyond 2x this


class UploadError(ValueError):
    """The upload cannot be used; the message says why in words meant for the user."""


# --------------------------------------------------------------------------------------------- reading


def read_limited(stream: IO[bytes], max_bytes: int = MAX_UPLOAD_BYTES, what: str = "file") -> bytes:
    """Read at most `max_bytes` from a stream in chunks (bounded memory, also without a Content-Length)."""
    chunks, total = [], 0
    while True:
        chunk = stream.read(min(1 << 20, max_bytes + 1 - total))
        if not chunk:
            break
        total += len(chunk)
        if total > max_bytes:
            raise UploadError(f"the {what} is larger than the limit of {max_bytes / 2**20:.0f} MB")
        chunks.append(chunk)
    return b"".join(chunks)


def _as_bytes(data: bytes | IO[bytes], max_bytes: int, what: str) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        if len(data) > max_bytes:
            raise UploadError(f"the {what} is larger than the limit of {max_bytes / 2**20:.0f} MB")
        return bytes(data)
    return read_limited(data, max_bytes, what)


@dataclass
class DecodedImage:
    """An upload decoded to RGB, with what was done to it on the way."""

    image: Image.Image  # mode "RGB"
    name: str
    format: str
    original_mode: str
    original_size: tuple[int, int]
    notes: list[str] = field(default_factory=list)
    decoded_pixels: int = 0  # what Pillow decoded (after JPEG's draft mode), counted against the caps
    index: int = 0  # its position among the files of the request (decode_request)


# Image.transpose for each EXIF orientation (what ImageOps.exif_transpose does), for images shrunk before it
_EXIF_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}  # fmt: skip
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")


def _draft(img: Image.Image, max_side: int) -> None:
    """Ask the decoder for a smaller image when it can (JPEG: 1/2, 1/4, 1/8 scale) before anything is decoded."""
    w, h = img.size
    if max(w, h) > max_side:
        scale = max_side / max(w, h)
        img.draft(img.mode, (max(1, int(w * scale + 0.999)), max(1, int(h * scale + 0.999))))


def _work_mode(img: Image.Image) -> str:
    """A mode Pillow can reduce and resize well that loses nothing `_to_rgb` needs."""
    mode = img.mode
    if mode == "P":
        alpha = "transparency" in img.info or (img.palette is not None and "A" in img.palette.mode)
        return "RGBA" if alpha else "RGB"
    if mode == "PA":
        return "RGBA"
    if mode == "1":
        return "L"
    if mode in _SIXTEEN_BIT:
        return "I"
    return mode


def shrink(img: Image.Image, max_side: int = MAX_WORK_SIDE) -> Image.Image:
    """`img` with its longest side at most `max_side` (aspect kept); the same object when it already fits.

    Large images are box-reduced by an integer factor in horizontal bands (each band converted to a mode that
    reduces well, e.g. palette -> RGB), so the extra memory is one band, not a converted copy of the whole
    image; the last step to `max_side` is Lanczos.
    """
    w, h = img.size
    if max(w, h) <= max_side:
        return img
    work = _work_mode(img)
    factor = max(w, h) // max_side
    if factor >= 2:
        out = Image.new(work, (-(-w // factor), -(-h // factor)))
        band = factor * max(1, BAND_PIXELS // (w * factor))
        for top in range(0, h, band):
            piece = img.crop((0, top, w, min(h, top + band)))
            if piece.mode != work:
                piece = piece.convert(work)
            out.paste(piece.reduce(factor), (0, top // factor))
            del piece
        img = out
    elif img.mode != work:
        img = img.convert(work)  # under 2 x max_side on a side: a few megapixels at most
    scale = max_side / max(img.size)
    if scale < 1:
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img = img.resize(size, Image.Resampling.LANCZOS)
    return img


def _to_rgb(img: Image.Image, notes: list[str], source_mode: str | None = None) -> Image.Image:
    """Normalise any Pillow mode to 8-bit RGB; transparency is composited on white (how it is displayed).

    `source_mode` is the mode before `shrink` (16-bit images are shrunk as 32-bit "I").
    """
    mode = img.mode
    if mode in (*_SIXTEEN_BIT, "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if source_mode in _SIXTEEN_BIT:
            mode = source_mode
            arr = np.clip(arr, 0, 65535)  # Lanczos may ring a little below 0 at sharp edges
        hi = float(arr.max()) if arr.size else 0.0
        lo = float(arr.min()) if arr.size else 0.0
        scale = 65535.0 if mode.startswith("I;16") or hi > 255 else 255.0
        if mode == "F" or lo < 0:
            arr, scale = arr - lo, (hi - lo) or 1.0
        arr = np.clip(arr / scale * 255.0, 0, 255).astype(np.uint8)
        notes.append(f"{mode} (high bit depth) scaled to 8 bits")
        return Image.fromarray(arr, "L").convert("RGB")
    if mode == "P":
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        if rgba.getextrema()[3][0] < 255:
            notes.append("transparent pixels composited on white")
        base = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(base, rgba).convert("RGB")
    if mode == "CMYK":
        notes.append("CMYK converted to RGB")
    elif mode not in ("RGB", "L", "1"):
        notes.append(f"{mode} converted to RGB")
    return img.convert("RGB")


def decode_image(
    data: bytes | IO[bytes],
    name: str = "upload",
    *,
    max_bytes: int = MAX_UPLOAD_BYTES,
    max_pixels: int = MAX_IMAGE_PIXELS,
    max_side: int = MAX_WORK_SIDE,
) -> DecodedImage:
    """Decode untrusted bytes into an RGB image, or raise UploadError with a human message.

    Recognised by content, never by the file name. Handles decompression bombs, truncated files, EXIF
    rotation (applied), animated images (first frame), CMYK, palette, 16-bit and alpha. The result has at
    most `max_side` pixels on its longest side (shrunk while decoding; `original_size` keeps the upload's).
    """
    raw = _as_bytes(data, max_bytes, "image")
    if not raw.strip(b"\x00 \t\r\n"):
        raise UploadError(f"{name}: the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(raw), formats=list(ALLOWED_FORMATS))
            fmt = img.format or "?"
            w, h = img.size
            if w * h > max_pixels:
                raise UploadError(
                    f"{name}: image too large ({w}x{h} = {w * h / 1e6:.0f} megapixels; "
                    f"the limit is {max_pixels / 1e6:.0f})"
                )
            if min(w, h) < MIN_SIDE:
                raise UploadError(f"{name}: the image has no pixels ({w}x{h})")
            notes: list[str] = []
            frames = getattr(img, "n_frames", 1)
            if frames > 1:
                img.seek(0)
                notes.append(f"animated ({frames} frames): the first frame is used")
            original_mode = img.mode
            _draft(img, max_side)  # JPEG: decode at 1/2 .. 1/8 scale straight away
            decoded = img.size[0] * img.size[1]
            img.load()  # decodes now: truncated or corrupt data fails here, not later in a model
            orientation = _orientation(img)
            if orientation not in (0, 1):
                notes.append("rotated upright as its EXIF orientation says")
            small = shrink(img, max_side)
            shrunk = small is not img or img.size != (w, h)  # by shrink, or by the JPEG draft
            if small is img:
                img = ImageOps.exif_transpose(img) or img
            else:  # a new image without the EXIF block: rotate it as the original said
                img.close()
                img = small.transpose(_EXIF_TRANSPOSE[orientation]) if orientation in _EXIF_TRANSPOSE else small
            del small
            if shrunk:
                notes.append(f"shrunk from {w}x{h} to {img.width}x{img.height} pixels for processing")
            rgb = _to_rgb(img, notes, original_mode)
    except UploadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UploadError(f"{name}: image too large (decompression bomb refused: {exc})") from exc
    except UnidentifiedImageError as exc:
        raise UploadError(
            f"{name}: not an image this app reads (the content is not {', '.join(ALLOWED_FORMATS)})"
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as exc:
        raise UploadError(f"{name}: the image is truncated or corrupt ({exc})") from exc
    return DecodedImage(rgb, name, fmt, original_mode, (w, h), notes, decoded)


def decoded_pixels(data: bytes, max_side: int = MAX_WORK_SIDE) -> int:
    """How many pixels decoding `data` will cost (after JPEG's draft mode), read from the header only.

    0 when the header cannot be read: decoding it then fails with its own message at no pixel cost.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS)) as img:
                _draft(img, max_side)
                return int(img.size[0] * img.size[1])
    except Exception:  # any unreadable header: decode_image says why
        return 0


def _mp(pixels: float) -> str:
    return f"{pixels / 1e6:,.0f}" if pixels >= 1e6 else f"{pixels / 1e6:,.1f}"


def decode_request(
    files: list[tuple[str, bytes]],
    *,
    max_files: int | None = None,
    max_pixels: int | None = None,
) -> tuple[list[DecodedImage], list[tuple[str, str]]]:
    """Decode the images of one request within its caps; refused ones become (name, message) pairs.

    At most `max_files` (default MAX_FILES_PER_REQUEST) are decoded, the rest are refused in one message;
    an image whose decoded pixels would take the request past `max_pixels` (default MAX_REQUEST_PIXELS) is
    refused before it is decoded, and smaller ones after it still get their turn.
    """
    max_files = MAX_FILES_PER_REQUEST if max_files is None else max_files
    max_pixels = MAX_REQUEST_PIXELS if max_pixels is None else max_pixels
    good: list[DecodedImage] = []
    bad: list[tuple[str, str]] = []
    used = 0
    for index, (name, data) in enumerate(files[:max_files]):
        cost = decoded_pixels(data) if isinstance(data, (bytes, bytearray)) else 0
        if used + cost > max_pixels:
            bad.append((name, (
                f"{name}: not processed: the images of one request may have {_mp(max_pixels)} megapixels in all "
                f"once decoded, and this one ({_mp(cost)} megapixels) would bring them to {_mp(used + cost)}. "
                "Upload fewer or smaller images at a time."
            )))  # fmt: skip
            continue
        try:
            img = decode_image(data, name)
        except UploadError as exc:
            bad.append((name, str(exc)))
            continue
        used += img.decoded_pixels
        img.index = index
        good.append(img)
    if len(files) > max_files:
        rest = [n for n, _ in files[max_files:]]
        shown = ", ".join(rest[:5]) + (f" and {len(rest) - 5} more" if len(rest) > 5 else "")
        bad.append(("", (
            f"{len(rest)} more file(s) not processed ({shown}): at most {max_files} images are processed at a "
            "time. Upload the others in another batch."
        )))  # fmt: skip
    return good, bad


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(0x0112, 1))
    except Exception:  # a broken EXIF block is not worth refusing the image for
        return 1


# ------------------------------------------------------------------------------------- preprocessing


def to_gray(img: Image.Image) -> np.ndarray:
    """Luminance in [0, 1], shape (H, W), float32."""
    return np.asarray(img.convert("L"), dtype=np.float32) / 255.0


def colourfulness(img: Image.Image) -> float:
    """Mean chroma (max - min of R, G, B) in [0, 1]: about 0 for grey drawings, 0.1+ for colour photos."""
    small = img.copy()
    small.thumbnail((128, 128))
    arr = np.asarray(small, dtype=np.float32) / 255.0
    return float((arr.max(2) - arr.min(2)).mean())


def _border_mean(a: np.ndarray) -> float:
    return float(np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]]).mean())


@dataclass
class Preprocessed:
    """A model input built from an upload, with every intermediate step for display."""

    x: np.ndarray  # (C, H, W) float32 in [0, 1], what the model gets
    steps: list[tuple[str, np.ndarray]]  # (caption, 2-D or HxWx3 array in [0, 1])
    inverted: bool = False
    colourfulness: float = 0.0
    empty: bool = False


def _step(a: np.ndarray | Image.Image, side: int = STEP_SIDE) -> np.ndarray:
    """A step image kept for display: at most `side` pixels on its longest side, float32 in [0, 1]."""
    if isinstance(a, Image.Image):
        if max(a.size) > side:
            a = a.copy()
            a.thumbnail((side, side), Image.Resampling.LANCZOS)
        return np.asarray(a, dtype=np.float32) / 255.0
    if max(a.shape[:2]) <= side:
        return a
    img = Image.fromarray(np.clip(a * 255.0, 0, 255).round().astype(np.uint8))
    img.thumbnail((side, side), Image.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.float32) / 255.0


def _resize_gray(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a [0, 1] gray array to (width, height) with antialiasing."""
    img = Image.fromarray(np.clip(a * 255.0, 0, 255).astype(np.uint8), "L")
    return np.asarray(img.resize(size, Image.Resampling.LANCZOS), dtype=np.float32) / 255.0


def preprocess_gray(img: Image.Image, size: int = 28, box: int = 20, center: str = "mass") -> Preprocessed:
    """MNIST-style: grayscale, invert a light background, crop to the content, scale into a `box` x `box`
    square (aspect kept), then place in `size` x `size` centred by mass (MNIST) or by box (Fashion-MNIST).

    Output: white strokes on black, floats in [0, 1], shape (1, size, size). Works on at most
    MAX_WORK_SIDE pixels a side (larger images are shrunk first); the steps are kept at display size.
    """
    img = shrink(img)
    steps: list[tuple[str, np.ndarray]] = [("upload", _step(img))]
    g = to_gray(img)
    steps.append(("grayscale", _step(g)))
    inverted = _border_mean(g) > 0.5
    if inverted:
        g = 1.0 - g
        steps.append(("inverted (light background)", _step(g)))
    g = np.clip(g - np.percentile(g, 5), 0, None)  # lift a grey background to black
    peak = float(g.max())
    if peak < 0.05:
        out = np.zeros((size, size), np.float32)
        steps.append(("no content found", out))
        return Preprocessed(out[None], steps, inverted, colourfulness(img), empty=True)
    g = g / peak
    rows, cols = np.nonzero(g > 0.15)
    g = g[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    steps.append(("cropped to the content", _step(g)))
    h, w = g.shape
    scale = box / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    g = np.clip(_resize_gray(g, (nw, nh)), 0, 1)
    steps.append((f"scaled into a {box}x{box} box", g))
    out = np.zeros((size, size), np.float32)
    if center == "mass" and g.sum() > 0:
        yy, xx = np.indices(g.shape)
        cy, cx = (yy * g).sum() / g.sum(), (xx * g).sum() / g.sum()
        # MNIST's centres of mass sit at pixel coordinate 14.0 of 28 (measured on the data), i.e. size / 2
        top, left = round(size / 2 - cy), round(size / 2 - cx)
    else:
        top, left = (size - nh) // 2, (size - nw) // 2
    top, left = min(max(top, 0), size - nh), min(max(left, 0), size - nw)
    out[top : top + nh, left : left + nw] = g
    steps.append((f"centred by {'mass' if center == 'mass' else 'box'} in {size}x{size}", out))
    return Preprocessed(out[None], steps, inverted, colourfulness(img))


def preprocess_rgb(img: Image.Image, size: int) -> Preprocessed:
    """Custom image folders: resize the shorter side to `size` and centre-crop a square; (3, size, size)."""
    img = shrink(img)
    fitted = ImageOps.fit(img, (size, size), Image.Resampling.BICUBIC)
    arr = np.asarray(fitted, dtype=np.float32) / 255.0
    steps = [("upload", _step(img)), (f"fitted to {size}x{size}", _step(arr))]
    return Preprocessed(arr.transpose(2, 0, 1).copy(), steps, False, colourfulness(img))


@dataclass(frozen=True)
class InputSpec:
    """What a dataset's models expect from an upload."""

    kind: str  # "digit" (MNIST-made), "fashion" (Fashion-MNIST-made), "rgb" (custom folders)
    size: int
    box: int = 0

    @property
    def grayscale(self) -> bool:
        return self.kind != "rgb"


def input_spec(dataset: str, image_size: int = 64) -> InputSpec:
    """How uploads are turned into inputs for models trained on `dataset`."""
    if dataset == "digits":
        return InputSpec("digit", 8, 8)  # scikit-learn digits fill their 8x8 square
    if dataset == "fashion-mnist":
        return InputSpec("fashion", 28, 28)
    if dataset == "custom":
        return InputSpec("rgb", int(image_size))
    return InputSpec("digit", 28, 20)


def preprocess(img: Image.Image, spec: InputSpec) -> Preprocessed:
    """The one preprocessing path used for page, CLI and custom training data."""
    if spec.kind == "rgb":
        return preprocess_rgb(img, spec.size)
    return preprocess_gray(img, spec.size, spec.box, "mass" if spec.kind == "digit" else "box")


# ----------------------------------------------------------------------------------- zip of folders


@dataclass
class ZipReport:
    """What a zip of class folders contained: classes with image counts, skipped entries and why, problems.

    `ok` is False when the zip cannot be used (then `problems` says why); `folder` is where the images were
    extracted (generated file names, plus a manifest), or None.
    """

    classes: dict[str, int] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    folder: Path | None = None
    digest: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems and self.folder is not None

    @property
    def n_images(self) -> int:
        return sum(self.classes.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "classes": self.classes,
            "skipped": [{"entry": e, "reason": r} for e, r in self.skipped],
            "problems": self.problems,
            "warnings": self.warnings,
            "folder": str(self.folder) if self.folder else None,
        }


_DRIVE = re.compile(r"^[A-Za-z]:")


def _unsafe_path(name: str) -> str | None:
    """Why an entry name must not be used (zip slip), else None."""
    if "\\" in name:
        return "backslash in the path (Windows path or traversal attempt)"
    if name.startswith("/") or _DRIVE.match(name):
        return "absolute path"
    if any(part == ".." for part in name.split("/")):
        return "path goes outside the zip ('..')"
    if "\x00" in name:
        return "NUL byte in the name"
    return None


def _clean_class_name(raw: str) -> str | None:
    """A display-safe class name, or None when the folder name is unusable."""
    name = unicodedata.normalize("NFC", raw).strip()
    if not name or len(name) > MAX_CLASS_NAME:
        return None
    if any(unicodedata.category(ch).startswith("C") for ch in name):  # control / format characters
        return None
    return name


def _class_and_file(parts: list[str]) -> tuple[str | None, str]:
    """(class folder, reason) for an entry's path parts after the optional wrapping root folder."""
    if len(parts) < 2:
        return None, "not inside a class folder"
    return parts[0], ""


def _declared_folders(infos: list[zipfile.ZipInfo], strip: bool) -> set[str]:
    """Class folder names the zip declares (directory entries included), to report empty ones."""
    out = set()
    for info in infos:
        if _unsafe_path(info.filename):
            continue
        parts = [p for p in info.filename.split("/") if p not in ("", ".")]
        if parts and (parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts)):
            continue
        parts = parts[1:] if strip else parts
        if len(parts) >= (1 if info.is_dir() else 2) and (name := _clean_class_name(parts[0])):
            out.add(name)
    return out


def default_custom_root() -> Path:
    """Where validated custom datasets are kept: <cache>/custom under the state root (data/paths.py)."""
    return cache_dir() / "custom"


def _folder_bytes(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
        except OSError:  # removed meanwhile by another session
            continue
    return total


def _dataset_bytes(folder: Path) -> int:
    """Bytes on disk of an extracted dataset (its manifest records them; older ones are measured)."""
    try:
        recorded = json.loads((folder / MANIFEST).read_text()).get("bytes")
        if isinstance(recorded, int) and recorded >= 0:
            return recorded
    except (OSError, ValueError, AttributeError):
        pass
    return _folder_bytes(folder)


def _last_used(folder: Path) -> float:
    """When a dataset was last validated or loaded (its manifest's mtime; the folder's without one)."""
    for path in (folder / MANIFEST, folder):
        try:
            return path.stat().st_mtime
        except OSError:
            continue
    return 0.0


def touch_dataset(folder: str | Path) -> None:
    """Mark a dataset as used now (it then outlives the lifetime and the quota's eviction longest)."""
    with contextlib.suppress(OSError):
        os.utime(Path(folder) / MANIFEST)


def sweep_datasets(
    root: str | Path,
    *,
    incoming: int = 0,
    keep: str = "",
    quota: int | None = None,
    lifetime: float | None = None,
    now: float | None = None,
) -> list[str]:
    """Apply the lifetime and the disk quota to the extracted datasets under `root`; returns the removed names.

    Datasets unused for `lifetime` seconds (default DATASET_LIFETIME_S) go first, then half-extracted
    folders older than an hour; then, while the datasets plus `incoming` bytes exceed `quota` (default
    CUSTOM_QUOTA_BYTES), the least recently used one goes (never `keep`, the one being reused).
    """
    quota = CUSTOM_QUOTA_BYTES if quota is None else quota
    lifetime = DATASET_LIFETIME_S if lifetime is None else lifetime
    now = time.time() if now is None else now
    root = Path(root)
    removed: list[str] = []
    datasets: list[tuple[float, int, Path]] = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return removed
    for folder in entries:
        if not folder.is_dir() or folder.is_symlink():
            continue
        age = now - _last_used(folder)
        if folder.name.startswith(".incoming-"):
            if age > STALE_INCOMING_S:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder.name)
            continue
        if folder.name != keep and age > lifetime:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
            continue
        datasets.append((_last_used(folder), _dataset_bytes(folder), folder))
    used = sum(b for _, b, _ in datasets) + incoming
    for _, size, folder in sorted(datasets, key=lambda d: d[0]):
        if used <= quota:
            break
        if folder.name == keep:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder.name)
        used -= size
    return removed


def extract_image_zip(
    data: bytes | IO[bytes],
    dest_root: str | Path | None = None,
    *,
    max_bytes: int = MAX_ZIP_BYTES,
    max_entries: int = MAX_ZIP_ENTRIES,
    max_total: int = MAX_ZIP_UNCOMPRESSED,
    max_ratio: float = MAX_COMPRESSION_RATIO,
    max_file: int = MAX_UPLOAD_BYTES,
    max_pixels: int | None = None,
    quota: int | None = None,
    lifetime: float | None = None,
) -> ZipReport:
    """Validate a zip of class-named folders and extract its images safely into a new folder.

    Layout: `class/image` or `root/class/image` (one wrapping folder). Every entry is checked: unsafe
    paths (zip slip), `__MACOSX/` and hidden files, non-images and corrupt images are skipped with the
    reason; too many entries, too many bytes once decompressed (counted while streaming), too many pixels
    once decoded (`max_pixels`, default MAX_ZIP_PIXELS, counted from each header before decoding) or a
    suspicious compression ratio stop the extraction. Images are kept with at most ZIP_STORE_SIDE pixels on
    their shorter side. Files are written under generated names in a temporary folder and moved into place
    only when the whole zip passed, so nothing half-written is ever left behind.

    Disk: before extracting, datasets unused for `lifetime` seconds (DATASET_LIFETIME_S) are removed; a new
    dataset then makes room under `quota` (CUSTOM_QUOTA_BYTES, all datasets together) by removing the least
    recently used ones, and is refused only when it alone is larger than the quota.
    """
    max_pixels = MAX_ZIP_PIXELS if max_pixels is None else max_pixels
    quota = CUSTOM_QUOTA_BYTES if quota is None else quota
    report = ZipReport()
    try:
        raw = _as_bytes(data, max_bytes, "zip file")
    except UploadError as exc:
        report.problems.append(str(exc))
        return report
    if not raw.strip():
        report.problems.append("the zip file is empty")
        return report
    report.digest = hashlib.sha256(raw).hexdigest()[:16]
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        report.problems.append(f"not a readable zip file ({exc})")
        return report
    if len(infos) > max_entries:
        report.problems.append(f"the zip has {len(infos):,} entries; the limit is {max_entries:,}")
        return report

    files = [i for i in infos if not i.is_dir()]
    # drop noise first: macOS resource forks and hidden files are skipped without counting as problems
    candidates: list[tuple[zipfile.ZipInfo, list[str]]] = []
    for info in files:
        name = info.filename
        why = _unsafe_path(name)
        if why:
            report.skipped.append((name, f"unsafe path: {why}"))
            continue
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if (parts and parts[0] == "__MACOSX") or any(p.startswith(".") for p in parts):
            report.skipped.append((name, "macOS metadata or hidden file"))
            continue
        if info.flag_bits & 0x1:
            report.skipped.append((name, "encrypted entry"))
            continue
        candidates.append((info, parts))
    # one wrapping folder holding all class folders ("dataset/cats/1.jpg") is stripped
    tops = {parts[0] for _, parts in candidates}
    strip = len(tops) == 1 and all(len(p) >= 3 for _, p in candidates)
    if strip:
        candidates = [(i, p[1:]) for i, p in candidates]

    tmp_root = Path(dest_root) if dest_root is not None else default_custom_root()
    tmp_root.mkdir(parents=True, exist_ok=True)
    sweep_datasets(tmp_root, keep=report.digest, quota=quota, lifetime=lifetime)  # expired ones, over-quota ones
    work = Path(tempfile.mkdtemp(prefix=".incoming-", dir=tmp_root))
    class_ids: dict[str, int] = {}
    names_seen: dict[str, str] = {}
    total = 0
    pixels = 0
    try:
        for info, parts in candidates:
            folder, why = _class_and_file(parts)
            if folder is None:
                report.skipped.append((info.filename, why))
                continue
            cls = _clean_class_name(folder)
            if cls is None:
                report.skipped.append((info.filename, "odd class folder name (empty, too long or control characters)"))
                continue
            if info.compress_size and info.file_size / max(info.compress_size, 1) > max_ratio:
                report.problems.append(
                    f"{info.filename}: compression ratio {info.file_size / info.compress_size:,.0f}:1 is "
                    f"suspicious (zip bomb?); the limit is {max_ratio:.0f}:1"
                )
                return report
            if info.file_size > max_file:
                report.skipped.append((info.filename, f"larger than {max_file / 2**20:.0f} MB"))
                continue
            # stream it, counting real bytes (headers can lie)
            buf = bytearray()
            try:
                with zf.open(info) as fh:
                    while chunk := fh.read(1 << 16):
                        buf += chunk
                        total += len(chunk)
                        if total > max_total:
                            report.problems.append(
                                f"the zip expands to more than {max_total / 2**20:.0f} MB (zip bomb?); extraction stopped"
                            )
                            return report
                        if len(buf) > max_file:
                            break
            except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
                report.skipped.append((info.filename, f"unreadable entry ({exc})"))
                continue
            if len(buf) > max_file:
                report.skipped.append((info.filename, f"larger than {max_file / 2**20:.0f} MB"))
                continue
            cost = decoded_pixels(bytes(buf))
            if pixels + cost > max_pixels:
                report.problems.append(
                    f"the images in the zip add up to more than {_mp(max_pixels)} megapixels once decoded "
                    f"(stopped at {info.filename}); use fewer or smaller images (the models see at most 224x224)"
                )
                return report
            try:
                decoded = decode_image(bytes(buf), info.filename)
            except UploadError as exc:
                reason = str(exc).removeprefix(f"{info.filename}: ")
                report.skipped.append((info.filename, reason))
                continue
            pixels += decoded.decoded_pixels
            if cls not in class_ids:
                if len(class_ids) >= MAX_CLASSES:
                    report.problems.append(f"more than {MAX_CLASSES} class folders")
                    return report
                class_ids[cls] = len(class_ids)
                names_seen[cls] = folder
            idx = class_ids[cls]
            n = report.classes.get(cls, 0)
            out_dir = work / f"{idx:03d}"
            out_dir.mkdir(exist_ok=True)
            # generated name; the image is re-encoded as PNG (normalised RGB, no metadata carried over)
            _store_size(decoded.image).save(out_dir / f"{n:05d}.png", format="PNG")
            report.classes[cls] = n + 1

        # layout checks
        if not report.classes:
            report.problems.append(
                "no images in class folders: the zip must contain one folder per class with images inside "
                "(e.g. cats/1.jpg, dogs/2.png)"
            )
        small = {c: n for c, n in report.classes.items() if n < MIN_IMAGES_PER_CLASS}
        for c, n in small.items():
            report.warnings.append(
                f"class {c!r} has only {n} image(s) (at least {MIN_IMAGES_PER_CLASS} are needed); it is left out"
            )
        for c in sorted(_declared_folders(infos, strip) - set(report.classes)):
            report.warnings.append(f"class folder {c!r} contains no usable image; it is left out")
        usable = {c: n for c, n in report.classes.items() if n >= MIN_IMAGES_PER_CLASS}
        if report.classes and len(usable) < 2:
            report.problems.append(
                f"at least two classes with {MIN_IMAGES_PER_CLASS}+ images each are needed; found "
                + (", ".join(f"{c!r}: {n}" for c, n in report.classes.items()) or "none")
            )
        if report.problems:
            return report
        manifest = {
            "format": 1,
            "classes": [{"name": c, "dir": f"{class_ids[c]:03d}", "count": usable[c]} for c in usable],
            "skipped": len(report.skipped),
            "digest": report.digest,
        }
        for c in set(report.classes) - set(usable):
            shutil.rmtree(work / f"{class_ids[c]:03d}", ignore_errors=True)
        size = _folder_bytes(work)
        if size > quota:
            report.problems.append(
                f"the extracted images take {size / 2**20:,.0f} MB, more than the {quota / 2**20:,.0f} MB this "
                "server keeps for uploaded datasets; use fewer or smaller images"
            )
            return report
        manifest["bytes"] = size
        (work / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
        final = tmp_root / report.digest
        if final.exists():
            shutil.rmtree(work, ignore_errors=True)  # same zip validated before: reuse it
            touch_dataset(final)
        else:
            sweep_datasets(tmp_root, incoming=size, keep=report.digest, quota=quota, lifetime=lifetime)
            try:
                os.replace(work, final)
            except OSError:  # another session moved the same zip into place first
                shutil.rmtree(work, ignore_errors=True)
        report.folder = final
        report.classes = usable
        return report
    finally:
        if report.folder is None:
            shutil.rmtree(work, ignore_errors=True)
        zf.close()


def _store_size(img: Image.Image) -> Image.Image:
    """An extracted image with at most ZIP_STORE_SIDE pixels on its shorter side (training fits to <= 224)."""
    short = min(img.size)
    if short <= ZIP_STORE_SIDE:
        return img
    scale = ZIP_STORE_SIDE / short
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.Resampling.LANCZOS)


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of a validated custom dataset folder; refuses folders this module did not write."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise UploadError(f"{folder} is not a validated image dataset (no {MANIFEST}); upload it as a zip")
    try:
        meta = json.loads(path.read_text())
        classes = meta["classes"]
        assert isinstance(classes, list) and all(re.fullmatch(r"\d{3}", c["dir"]) for c in classes)
    except (ValueError, KeyError, TypeError, AssertionError) as exc:
        raise UploadError(f"the dataset manifest in {folder} is damaged: {exc}") from exc
    return meta
