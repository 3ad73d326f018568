"""Result rows, perf/results.json and the printed table.

Every row compares `value` (the product) against `reference` where there is one. `ratio` is always
"higher is better for the product": value / reference for rates (images/s, GFLOP/s: the share of the matmul
peak, accuracy), reference / value for times and epochs (a speed-up). Rows without a comparison have null for
both; `note` says what a row means where the name does not (the chosen path, a missed target).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

RESULTS_PATH = Path(__file__).resolve().parent / "results.json"
TARGET_SPEEDUP = 4.0  # time to the reference's accuracy on MNIST-5k
EAGER_FLOOR = 0.95  # the chosen path may not be slower than fp32 eager by more than noise


@dataclass
class Result:
    """One benchmark number; `reference` and `ratio` are None where nothing is compared."""

    name: str
    value: float
    unit: str
    reference: float | None
    ratio: float | None
    note: str = ""

    def to_dict(self) -> dict:
        return {k: _clean(v) for k, v in asdict(self).items()}


def _clean(v: object) -> object:
    if isinstance(v, float):
        return None if not math.isfinite(v) else round(v, 6)
    return v


def write_json(results: list[Result], path: str | Path = RESULTS_PATH) -> Path:
    """Write the rows as a JSON list of {"name", "value", "unit", "reference", "ratio", "note"}."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([r.to_dict() for r in results], indent=2) + "\n")
    return path


def _fmt(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return "-"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.4f}"


def format_table(results: list[Result]) -> str:
    """A fixed-width text table of the rows."""
    head = ("name", "value", "unit", "reference", "ratio", "note")
    rows = [(r.name, _fmt(r.value), r.unit, _fmt(r.reference), _fmt(r.ratio), r.note) for r in results]
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=False)]
    align = ("<", ">", "<", ">", ">", "<")

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths, strict=True)).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(head), sep, *(line(r) for r in rows)])


def summary(results: list[Result]) -> str:
    """The key ratios in one paragraph, each against its target."""
    by = {r.name: r for r in results}
    out = []
    eager = by.get("chosen_path_vs_fp32_eager")
    if eager and eager.ratio:
        verdict = "meets" if eager.ratio >= EAGER_FLOOR else "MISSES"
        out.append(f"execution path: {eager.note}; {eager.ratio:.2f}x plain fp32 eager in real epochs "
                   f"({verdict} the >= {EAGER_FLOOR:g} floor)")  # fmt: skip
    tp = by.get("train_images_per_s")
    if tp and tp.ratio:
        out.append(f"throughput: product loop {tp.ratio:.2f}x the reference loop ({_fmt(tp.value)} vs "
                   f"{_fmt(tp.reference)} images/s)")  # fmt: skip
    tta = by.get("time_to_accuracy_s")
    if tta:
        if tta.ratio:
            verdict = "meets" if tta.ratio >= TARGET_SPEEDUP else "MISSES"
            out.append(
                f"time to the reference's accuracy: speed-up {tta.ratio:.2f}x ({_fmt(tta.value)} s vs "
                f"{_fmt(tta.reference)} s; {verdict} the >= {TARGET_SPEEDUP:g}x target)"
            )
        else:
            out.append(f"time to accuracy: target NOT reached by the product loop ({_fmt(tta.value)} s spent)")
    same = by.get("time_to_accuracy_same_model_s")
    if same and same.ratio:
        out.append(f"the loops alone (the reference loop on the product's CNN as well): {same.ratio:.2f}x "
                   f"({_fmt(same.value)} s vs {_fmt(same.reference)} s)")  # fmt: skip
    for name, label in (("train_gflops_vs_matmul_fp32", "fp32"), ("train_gflops_vs_matmul_bf16", "bf16")):
        g = by.get(name)
        if g and g.ratio:
            out.append(
                f"product loop at {g.ratio:.1%} of {label} matmul ({_fmt(g.value)} / {_fmt(g.reference)} GFLOP/s)"
            )
    for r in results:
        if r.name.startswith("fashion_time_to_"):
            out.append(f"Fashion-MNIST default: {r.name.removeprefix('fashion_time_to_').removesuffix('_s')} "
                       f"after {_fmt(r.value)} {r.unit} ({r.note})")  # fmt: skip
    at = by.get("fashion_accuracy_at_reference_time")
    if at:
        out.append(f"Fashion-MNIST at the reference loop's wall-clock time: {_fmt(at.value)} vs {_fmt(at.reference)} "
                   f"accuracy ({at.note})")  # fmt: skip
    return "\n".join(out)
