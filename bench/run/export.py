"""Export a stored model: safetensors + JSON config (as stored, no pickle), and ONNX for the torch models,
checked on export: ONNX Runtime must give the same outputs as torch within tolerance on real test inputs."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

ATOL = 1e-4  # max |logit difference| accepted between torch (fp32) and ONNX Runtime
CHECK_SAMPLES = 256


class ExportError(RuntimeError):
    """The model cannot be exported or its ONNX check failed; the message is meant for the user."""


def torch_module(est: Any) -> Any:
    """The estimator's nn.Module when it is a torch model with a fixed input shape, else None."""
    import torch

    module = getattr(est, "model_", None)
    if isinstance(module, torch.nn.Module) and getattr(est, "in_shape_", None) is not None:
        return module
    return None


def export_onnx(est: Any, path: str | Path, X_check: np.ndarray) -> dict[str, Any]:
    """Write `est`'s torch module to ONNX (batch dimension dynamic) and compare ONNX Runtime with torch on
    X_check. Returns the check: samples, max abs difference, agreement of the argmax, pass/fail."""
    import onnxruntime as ort
    import torch

    module = torch_module(est)
    if module is None:
        raise ExportError("ONNX export is available for the torch models only")
    module = module.float().eval().cpu()
    path = Path(path)
    X = np.ascontiguousarray(X_check[:CHECK_SAMPLES], dtype=np.float32)
    example = torch.from_numpy(X[: min(4, len(X))])
    batch = torch.export.Dim("batch", min=1, max=65536)
    try:
        torch.onnx.export(
            module, (example,), str(path), input_names=["input"], output_names=["logits"],
            dynamic_shapes=({0: batch},), dynamo=True, external_data=False, verbose=False,
        )  # fmt: skip
    except Exception as exc:  # the exporter raises many types; the user gets one message
        raise ExportError(f"ONNX export failed: {type(exc).__name__}: {exc}") from exc
    with torch.inference_mode():
        ref = module(torch.from_numpy(X)).float().numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name: X})[0]
    diff = float(np.abs(out - ref).max()) if len(X) else 0.0
    agree = float((out.argmax(1) == ref.argmax(1)).mean()) if len(X) else 1.0
    return {
        "samples": len(X),
        "max_abs_diff": diff,
        "tolerance": ATOL,
        "argmax_agreement": agree,
        "passed": bool(diff <= ATOL and agree == 1.0),
        "runtime": f"onnxruntime {ort.__version__} (CPUExecutionProvider)",
        "bytes": path.stat().st_size,
    }


def check_inputs(report: dict[str, Any]) -> np.ndarray:
    """Real test inputs of the run (the same split, rebuilt from the task registry)."""
    from bench.tasks import get_task

    task = get_task(report["task"])
    ds = task.datasets[report["dataset"]]
    split = ds.loader(seed=int(report["seed"]), max_samples=int(report.get("train_config", {}).get("max_samples", 0)))
    return np.asarray(split.X_test[:CHECK_SAMPLES])


def export_model(store: Any, run_id: str, model: str, out_dir: str | Path, onnx: bool = True) -> dict[str, Any]:
    """Write `model` of run `run_id` into out_dir/<model>/: config.json + weights, model.onnx for torch models
    (with the ONNX Runtime check in export.json). Raises ExportError / RunNotFound with a readable message."""
    from bench.run.store import MODEL_NAME, RunNotFound

    if not MODEL_NAME.match(model or ""):
        raise RunNotFound(f"not a model name: {model!r}")
    report = store.load_report(run_id)
    names = [m["name"] for m in report["models"]]
    if model not in names:
        raise ExportError(f"run {run_id[:8]} has no model {model!r}; it has {', '.join(names)}")
    folder = Path(out_dir) / model
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    est = store.load_model(run_id, model)
    est.save(folder)
    info: dict[str, Any] = {
        "run_id": run_id, "model": model, "task": report["task"], "dataset": report["dataset"],
        "files": sorted(p.name for p in folder.iterdir()), "onnx": None,
    }  # fmt: skip
    if onnx:
        if torch_module(est) is None:
            info["onnx"] = {"skipped": "ONNX export is available for the torch models only"}
        else:
            info["onnx"] = export_onnx(est, folder / "model.onnx", check_inputs(report))
            info["files"].append("model.onnx")
            if not info["onnx"]["passed"]:
                (folder / "export.json").write_text(json.dumps(info, indent=2))
                raise ExportError(
                    f"ONNX check failed: max |difference| {info['onnx']['max_abs_diff']:.3g} > {ATOL} or "
                    f"argmax agreement {info['onnx']['argmax_agreement']:.2%} < 100%"
                )
    (folder / "export.json").write_text(json.dumps(info, indent=2))
    info["files"].append("export.json")
    return info


def zip_folder(folder: str | Path) -> bytes:
    """The folder's files as a zip archive in memory (for a download button)."""
    folder = Path(folder)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(folder.parent))
    return buf.getvalue()
