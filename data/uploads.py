"""Untrusted images and zips of class folders: safe decoding, MNIST-style preprocessing, zip validation.

Everything a user uploads goes through here before any model sees it (see SECURITY.md items 1-8, 15):
sizes are capped while reading, images are recognised by content (Pillow), decompression bombs and
truncated files become `UploadError`s with a message meant for the user, odd modes (CMYK, palette,
16-bit, alpha, EXIF rotation, animated GIFs) are normalised to RGB, and zips are read entry by entry
with caps on entries, bytes and compression ratio; extracted files get generated names, so no path
from the zip is ever used on disk.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import struct
import tempfile
import unicodedata
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # one image file
MAX_IMAGE_PIXELS = 40_000_000  # width * height after the header is read, before decoding
MIN_SIDE = 1
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")

MAX_ZIP_BYTES = 200 * 1024 * 1024  # the zip file itself
MAX_ZIP_ENTRIES = 20_000
MAX_ZIP_UNCOMPRESSED = 500 * 1024 * 1024  # counted while streaming, not trusted from the headers
MAX_COMPRESSION_RATIO = 200  # per entry; real PNG/JPEG barely compress, bombs reach 1000x
MIN_IMAGES_PER_CLASS = 4
MAX_CLASSES = 100
MAX_CLASS_NAME = 64
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


def _to_rgb(img: Image.Image, notes: list[str]) -> Image.Image:
    """Normalise any Pillow mode to 8-bit RGB; transparency is composited on white (how it is displayed)."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
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
) -> DecodedImage:
    """Decode untrusted bytes into an RGB image, or raise UploadError with a human message.

    Recognised by content, never by the file name. Handles decompression bombs, truncated files, EXIF
    rotation (applied), animated images (first frame), CMYK, palette, 16-bit and alpha.
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
            img.load()  # decodes now: truncated or corrupt data fails here, not later in a model
            if _orientation(img) not in (0, 1):
                notes.append("rotated upright as its EXIF orientation says")
            img = ImageOps.exif_transpose(img) or img
            rgb = _to_rgb(img, notes)
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
    return DecodedImage(rgb, name, fmt, original_mode, (w, h), notes)


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


def _resize_gray(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a [0, 1] gray array to (width, height) with antialiasing."""
    img = Image.fromarray(np.clip(a * 255.0, 0, 255).astype(np.uint8), "L")
    return np.asarray(img.resize(size, Image.Resampling.LANCZOS), dtype=np.float32) / 255.0


def preprocess_gray(img: Image.Image, size: int = 28, box: int = 20, center: str = "mass") -> Preprocessed:
    """MNIST-style: grayscale, invert a light background, crop to the content, scale into a `box` x `box`
    square (aspect kept), then place in `size` x `size` centred by mass (MNIST) or by box (Fashion-MNIST).

    Output: white strokes on black, floats in [0, 1], shape (1, size, size).
    """
    steps: list[tuple[str, np.ndarray]] = [("upload", np.asarray(img, dtype=np.float32) / 255.0)]
    g = to_gray(img)
    steps.append(("grayscale", g))
    inverted = _border_mean(g) > 0.5
    if inverted:
        g = 1.0 - g
        steps.append(("inverted (light background)", g))
    g = np.clip(g - np.percentile(g, 5), 0, None)  # lift a grey background to black
    peak = float(g.max())
    if peak < 0.05:
        out = np.zeros((size, size), np.float32)
        steps.append(("no content found", out))
        return Preprocessed(out[None], steps, inverted, colourfulness(img), empty=True)
    g = g / peak
    rows, cols = np.nonzero(g > 0.15)
    g = g[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    steps.append(("cropped to the content", g))
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
    fitted = ImageOps.fit(img, (size, size), Image.Resampling.BICUBIC)
    arr = np.asarray(fitted, dtype=np.float32) / 255.0
    steps = [("upload", np.asarray(img, dtype=np.float32) / 255.0), (f"fitted to {size}x{size}", arr)]
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
    """Where validated custom datasets are kept (git-ignored cache)."""
    from data.images import CACHE

    return CACHE / "custom"


def extract_image_zip(
    data: bytes | IO[bytes],
    dest_root: str | Path | None = None,
    *,
    max_bytes: int = MAX_ZIP_BYTES,
    max_entries: int = MAX_ZIP_ENTRIES,
    max_total: int = MAX_ZIP_UNCOMPRESSED,
    max_ratio: float = MAX_COMPRESSION_RATIO,
    max_file: int = MAX_UPLOAD_BYTES,
) -> ZipReport:
    """Validate a zip of class-named folders and extract its images safely into a new folder.

    Layout: `class/image` or `root/class/image` (one wrapping folder). Every entry is checked: unsafe
    paths (zip slip), `__MACOSX/` and hidden files, non-images and corrupt images are skipped with the
    reason; too many entries, too many bytes once decompressed (counted while streaming) or a suspicious
    compression ratio stop the extraction. Files are written under generated names in a temporary folder
    and moved into place only when the whole zip passed, so nothing half-written is ever left behind.
    """
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
    work = Path(tempfile.mkdtemp(prefix=".incoming-", dir=tmp_root))
    class_ids: dict[str, int] = {}
    names_seen: dict[str, str] = {}
    total = 0
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
            try:
                decoded = decode_image(bytes(buf), info.filename)
            except UploadError as exc:
                reason = str(exc).removeprefix(f"{info.filename}: ")
                report.skipped.append((info.filename, reason))
                continue
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
            decoded.image.save(out_dir / f"{n:05d}.png", format="PNG")
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
        (work / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
        final = tmp_root / report.digest
        if final.exists():
            shutil.rmtree(work, ignore_errors=True)  # same zip validated before: reuse it
        else:
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
