"""Small file helpers shared by every model's save() / load().

A saved model is a folder: `config.json` (the JSON meta, indent 2) plus its weights (`model.safetensors`
for torch modules, `*.skops` for scikit-learn), never a pickle.
"""

from __future__ import annotations

import json
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


def read_meta(folder: str | Path) -> dict[str, Any]:
    """The `config.json` of a saved model folder."""
    return json.loads((Path(folder) / CONFIG_FILE).read_text())


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
