"""Small file helpers shared by every model's save() / load().

A saved model is a folder: `config.json` (the JSON meta, indent 2) plus its weights (`model.safetensors`
for torch modules, `*.skops` for scikit-learn), never a pickle.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.config import ConfigError

if TYPE_CHECKING:
    import torch

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def atomic_write(path: Path, write: Callable[[str], object]) -> None:
    """Write via a temp file in the same folder, then os.replace: a crash never leaves half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def module_tensors(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A module's state dict as detached, contiguous CPU tensors (what safetensors stores)."""
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def write_model_folder(
    folder: str | Path,
    meta: Mapping[str, Any],
    tensors: Mapping[str, torch.Tensor] | None = None,
    writers: Mapping[str, Callable[[str], object]] | None = None,
) -> Path:
    """Create `folder` and write, atomically file by file, `model.safetensors` (when `tensors` is given),
    each `writers` file (name -> function writing that file at the path it is given), then `config.json`.

    The config goes last so a folder with a config always has its weights. Returns the folder as a Path.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if tensors is not None:
        from safetensors.torch import save_file

        state = dict(tensors)
        atomic_write(folder / WEIGHTS_FILE, lambda p: save_file(state, p))
    for name, write in (writers or {}).items():
        atomic_write(folder / name, write)
    text = json.dumps(meta, indent=2)
    atomic_write(folder / CONFIG_FILE, lambda p: Path(p).write_text(text))
    return folder


# A stored config is untrusted text (SECURITY.md item 20): its dimensions are bounded before anything is built
# from them, so `n_classes: 1e12` or `in_shape: [1, 1e6, 1e6]` is refused instead of allocating gigabytes.
MAX_CONFIG_BYTES = 1024 * 1024
MAX_CLASSES = 10_000
MAX_INPUT_SIDE = 4096  # one image side (the pretrained CNN's 224 px, MNIST's 28); channels are bounded below
MAX_INPUT_VALUES = 3 * 1024 * 1024  # values per input
MAX_FEATURES = 100_000  # an embedding or feature vector
_COUNT_KEYS = ("n_train", "n_val", "seed")


def _whole(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or not float(value).is_integer():
        raise ConfigError(f"saved config: {name} must be a whole number, got {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(f"saved config: {name} must be between {lo:,} and {hi:,}, got {value:,}")
    return int(value)


def check_meta(meta: Any) -> dict[str, Any]:
    """Refuse (ConfigError) a stored model config that is not an object or whose dimensions are absurd."""
    if not isinstance(meta, dict):
        raise ConfigError("saved config is not a JSON object")
    if "n_classes" in meta:
        _whole("n_classes", meta["n_classes"], 1, MAX_CLASSES)
    if "in_dim" in meta:
        _whole("in_dim", meta["in_dim"], 1, MAX_FEATURES)
    if "in_shape" in meta:
        shape = meta["in_shape"]
        if not isinstance(shape, list) or not 1 <= len(shape) <= 4:
            raise ConfigError(f"saved config: in_shape must be a list of 1 to 4 sizes, got {shape!r}")
        dims = [_whole("in_shape", d, 1, MAX_INPUT_SIDE) for d in shape]
        if math.prod(dims) > MAX_INPUT_VALUES:
            raise ConfigError(f"saved config: in_shape {dims} has more than {MAX_INPUT_VALUES:,} values per input")
    for key in _COUNT_KEYS:
        if key in meta:
            _whole(key, meta[key], 0, 2**63 - 1)
    for key in ("config", "train_config"):
        if key in meta and not isinstance(meta[key], dict):
            raise ConfigError(f"saved config: {key} must be a JSON object")
    return meta


def read_meta(folder: str | Path) -> dict[str, Any]:
    """The `config.json` of a saved model folder, size- and dimension-checked (ConfigError when unusable)."""
    path = Path(folder) / CONFIG_FILE
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{CONFIG_FILE} is larger than {MAX_CONFIG_BYTES // 1024} KB")
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{CONFIG_FILE} of the saved model is missing or not valid JSON") from exc
    return check_meta(meta)


def read_weights(folder: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of `model.safetensors` in a saved model folder."""
    from safetensors.torch import load_file

    return load_file(Path(folder) / WEIGHTS_FILE)


def load_state(module: torch.nn.Module, state: Mapping[str, torch.Tensor], strict: bool = True) -> None:
    """`module.load_state_dict(state)`; weights that do not fit the module raise ConfigError."""
    try:
        module.load_state_dict(state, strict=strict)
    except RuntimeError as exc:
        raise ConfigError(f"saved weights do not match the saved config: {exc}") from exc


def load_weights(module: torch.nn.Module, folder: str | Path, strict: bool = True) -> None:
    """Load `model.safetensors` from `folder` into `module`; weights that do not fit raise ConfigError."""
    load_state(module, read_weights(folder), strict)


# ------------------------------------------------------------------------------------------ scikit-learn (skops)
#
# The ONE way a stored scikit-learn object is read back (SECURITY.md item 19). skops rebuilds whatever types the
# caller trusts, and a type is code: `numpy.full_like -> numpy.min -> numpy.savetxt` chained in a pipeline writes
# any file when the model predicts. So every model name declares the exact types its file may contain (see
# SKOPS_ALLOWED below and each model's module); the file's schema is read as JSON first, nothing is imported or
# built while it is checked, and a file naming any other type is refused before skops sees it. No prefix rules.

# Types every scikit-learn model's file contains: containers, arrays and numpy scalars. Nothing callable.
_NUMPY_SCALARS = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                  "uint64", "bool_", "intp", "str_")  # fmt: skip
SKOPS_COMMON_TYPES = frozenset(
    {f"builtins.{t}" for t in ("dict", "list", "str", "tuple", "int", "float", "bool", "NoneType")}
    | {"numpy.ndarray", "numpy.dtype"}
    | {f"numpy.{t}" for t in _NUMPY_SCALARS}
)

# model name -> (the types its stored file may contain besides the common ones, a check of the loaded object).
# Filled by the modules that define the models (register_skops_model), read only by load_skops.
_SKOPS_MODELS: dict[str, tuple[frozenset[str], Callable[[Any], bool]]] = {}


def register_skops_model(name: str, types: frozenset[str] | set[str], check: Callable[[Any], bool]) -> None:
    """Declare what a stored scikit-learn model called `name` is made of: its exact types and a shape check."""
    _SKOPS_MODELS[name] = (frozenset(types), check)


def skops_allowed(name: str) -> frozenset[str]:
    """Every type a stored file of model `name` may name (its own plus the common containers and arrays)."""
    if name not in _SKOPS_MODELS:
        raise ConfigError(f"no stored scikit-learn model is called {name!r}")
    return SKOPS_COMMON_TYPES | _SKOPS_MODELS[name][0]


def skops_model_names() -> list[str]:
    """The model names with a declared allow-list (tests parametrize over these)."""
    return sorted(_SKOPS_MODELS)


def skops_types(path: Path) -> set[str]:
    """Every "module.Class" named in a .skops file's schema, read as JSON (nothing is imported or built)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            info = z.getinfo("schema.json")
            if info.file_size > 64 * 1024 * 1024:
                raise ConfigError(f"{path.name} has an implausibly large schema")
            schema = json.loads(z.read(info))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"{path.name} is not a readable skops file") from exc
    found: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "__class__" in node or "__module__" in node:
                found.add(f"{node.get('__module__')}.{node.get('__class__')}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def load_skops(path: str | Path, name: str) -> Any:
    """Load the scikit-learn object stored at `path` for model `name`, trusting exactly that model's types.

    Raises ConfigError (before anything is built) when the file names a type outside the model's allow-list,
    and after loading when the object is not what a saved `name` model is (e.g. another model's pipeline)."""
    path = Path(path)
    allowed = skops_allowed(name)
    bad = sorted(skops_types(path) - allowed)
    if bad:
        raise ConfigError(f"refusing to load {path.name} as {name!r}: types outside its allow-list {bad}")
    import skops.io as sio  # deferred: skops pulls in scikit-learn's whole estimator registry

    try:
        untrusted = sio.get_untrusted_types(file=path)
        obj = sio.load(path, trusted=[t for t in untrusted if t in allowed])
    except Exception as exc:  # skops' own refusal (a type our schema walk missed) or a damaged file
        raise ConfigError(f"refusing {path.name} as {name!r}: {type(exc).__name__} while loading") from exc
    if not _SKOPS_MODELS[name][1](obj):
        raise ConfigError(f"refusing {path.name}: a {type(obj).__name__} is not a saved {name!r} model")
    return obj


def skops_writer(obj: Any) -> Callable[[str], object]:
    """A `write_model_folder` writer that dumps `obj` with skops (no pickle)."""

    def write(path: str) -> None:
        import skops.io as sio  # deferred: see load_skops

        sio.dump(obj, path)

    return write
