"""Run store on MLflow tracking.

Default: a sqlite database and artifacts under the git-ignored `runs/` folder; `MLFLOW_TRACKING_URI`
points it at a server instead. Each benchmark is one MLflow run: params, per-epoch metrics per model,
test metrics, and artifacts (report.json, test predictions, every model as config.json + safetensors
or skops). Runs are only listed once FINISHED, so an interrupted run never shows up half-written.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "false"  # forced: an inherited "true" must not win
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# An unreachable tracking server must not hold a page for minutes (MLflow's defaults: 7 retries with back-off,
# 120 s per request, about 4 minutes per call measured): fail in seconds and say so. Settable as usual.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")

import numpy as np

from bench.tasks import REGISTRY
from data.paths import CallTimePath, state_root
from models.config import ConfigError
from models.io import read_meta
from models.redact import SECRET_QUERY_KEYS, install_log_redaction, redact, redact_uri  # noqa: F401 (re-exported)

install_log_redaction()  # every log line of a process that opens the store passes through redact()

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = CallTimePath(state_root)  # NEURALBENCH_RUNS, else ./runs (data/paths.py), decided at every use
RUN_ID = re.compile(r"^[0-9a-f]{32}$")
MODEL_NAME = re.compile(r"^[a-z0-9_-]{1,40}$")
class RunNotFound(LookupError):
    """The run id does not exist in the store or is malformed."""


def store_error(exc: BaseException, store: Any = None) -> str:
    """What went wrong with the run store, as a short clause without any credential (SECURITY.md item 27):
    "Could not load run 1234abcd: " + store_error(exc, store).

    MLflow's own messages name the tracking URI with its user:password@ and quote whole HTTP exchanges, so
    they are never shown as they are: an unreachable or refusing server gets its own sentence, anything else
    its first line, redacted and cut short. `store` (a RunStore) names the server in its redacted form."""
    where = f" at {store.display_uri}" if store is not None and not getattr(store, "local", True) else ""
    text = _chain_text(exc)
    if UNREACHABLE.search(text):
        return (f"the run store is unreachable: the tracking server{where} does not answer. Check that it is "
                "running and that MLFLOW_TRACKING_URI points at it.")  # fmt: skip
    if REFUSED.search(text):
        return (f"the tracking server{where} refused the request (not authorised): check the credentials "
                "given to it (MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD or a token).")  # fmt: skip
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return redact(first)[:300] or type(exc).__name__


def store_unreachable(exc: BaseException) -> bool:
    """True when `exc` (or an exception it was raised from) says the tracking server could not be reached."""
    return bool(UNREACHABLE.search(_chain_text(exc)))


def _chain_text(exc: BaseException) -> str:
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and all(cur is not e for e in chain) and len(chain) < 20:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    return " ".join(f"{type(e).__name__} {e}" for e in chain)


UNREACHABLE = re.compile(
    r"ConnectionError|NewConnectionError|Connection refused|Failed to establish|Max retries exceeded|"
    r"Name or service not known|nodename nor servname|Temporary failure in name resolution|timed out|"
    r"ConnectTimeout|ReadTimeout|No route to host|Network is unreachable",
    re.I,
)
REFUSED = re.compile(r"\b(401|403)\b|Unauthorized|Forbidden|PERMISSION_DENIED|UNAUTHENTICATED", re.I)


def _metric_key(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-. /]", "_", text)


class RunStore:
    """Benchmark runs on MLflow tracking, through an explicit MlflowClient (thread-safe, no global run)."""

    def __init__(self, tracking_uri: str | None = None, root: str | Path | None = None) -> None:
        from mlflow import MlflowClient

        self.root = Path(root) if root else state_root()
        uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        self.local = uri is None
        if uri is None:
            self.root.mkdir(parents=True, exist_ok=True)
            uri = f"sqlite:///{self.root / 'mlflow.db'}"
        self.tracking_uri = uri
        self.client = MlflowClient(tracking_uri=uri)

    def location(self) -> dict[str, Any]:
        """Keyword arguments that open this same store in another process: RunStore(**store.location())."""
        return {"tracking_uri": None if self.local else self.tracking_uri, "root": str(self.root)}

    @property
    def display_uri(self) -> str:
        """The tracking URI with any credentials (`user:pass@`, token query values) removed, for display."""
        return redact_uri(self.tracking_uri)

    def _experiment(self, task: str) -> str:
        name = f"neuralbench-{task}"
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        location = (self.root / "artifacts" / task).resolve().as_uri() if self.local else None
        try:
            return self.client.create_experiment(name, artifact_location=location)
        except Exception:  # created concurrently by another session
            exp = self.client.get_experiment_by_name(name)
            if exp is None:
                raise
            return exp.experiment_id

    def start(self, task: str, dataset: str, seed: int, params: dict[str, Any]) -> str:
        """Open a run; returns its generated id."""
        from mlflow.entities import Param

        run = self.client.create_run(
            self._experiment(task),
            run_name=f"{task}-{dataset}-seed{seed}",
            tags={"neuralbench.task": task, "neuralbench.dataset": dataset, "neuralbench.seed": str(seed)},
        )
        run_id = run.info.run_id
        flat = [Param(k[:250], redact(v)[:6000]) for k, v in sorted(params.items())]
        for i in range(0, len(flat), 100):
            self.client.log_batch(run_id, params=flat[i : i + 100])
        return run_id

    def log_epoch(self, run_id: str, model: str, record: dict[str, Any]) -> None:
        """Per-epoch metrics of one model, step = epoch."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [
            Metric(_metric_key(f"{model}.{k}"), float(v), now, int(record["epoch"]))
            for k, v in record.items()
            if k != "epoch" and v is not None
        ]
        self.client.log_batch(run_id, metrics=metrics)

    def finish(
        self,
        run_id: str,
        report: dict[str, Any],
        predictions: dict[str, np.ndarray],
        estimators: dict[str, Any],
    ) -> None:
        """Log test metrics and artifacts, then mark the run FINISHED."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = []
        # the task's own metrics (and the seed mean of its primary one), as its evaluator declares them
        evaluator = REGISTRY[report["task"]].evaluator
        metric_keys = [m.name for m in evaluator.metrics] + [f"{evaluator.primary_metric}_seed_mean"]
        for m in report["models"]:
            for key in metric_keys:
                if key in m["metrics"]:
                    metrics.append(Metric(_metric_key(f"{m['name']}.test_{key}"), float(m["metrics"][key]), now, 0))
            metrics.append(Metric(_metric_key(f"{m['name']}.train_seconds"), float(m["train_seconds"]), now, 0))
        self.client.log_batch(run_id, metrics=metrics)
        with tempfile.TemporaryDirectory(prefix="neuralbench-", dir=self.scratch_dir()) as tmp:
            tmp_path = Path(tmp)
            for name, est in estimators.items():
                est.save(tmp_path / "models" / name)
            np.savez(tmp_path / "predictions.npz", **predictions)
            (tmp_path / "report.json").write_text(json.dumps(report, indent=1))
            self.client.log_artifacts(run_id, str(tmp_path))
        self.client.set_terminated(run_id, "FINISHED")

    def abort(self, run_id: str, status: str = "KILLED", reason: str = "") -> None:
        """Close a run that did not finish (stopped, failed); it is never listed."""
        try:
            if reason:
                self.client.set_tag(run_id, "neuralbench.abort_reason", redact(reason)[:5000])
            self.client.set_terminated(run_id, status)
        except Exception:  # the store must never turn a stop into a crash
            pass

    def status(self, run_id: str) -> str:
        """RUNNING, FINISHED, FAILED or KILLED."""
        return self.client.get_run(run_id).info.status

    def close_if_running(self, run_id: str, status: str, reason: str = "") -> bool:
        """Close a run that its (dead or stopped) worker left RUNNING; True if it was still open."""
        try:
            if self.status(run_id) != "RUNNING":
                return False
        except Exception:
            return False
        self.abort(run_id, status, reason)
        return True

    def finished_report(self, run_id: str) -> dict[str, Any] | None:
        """The report of `run_id` if the run FINISHED, else None (never raises)."""
        try:
            return self.load_report(run_id) if self.status(run_id) == "FINISHED" else None
        except Exception:
            return None

    def list_runs(self, task: str | None = None, max_results: int = 50) -> list[dict[str, Any]]:
        """Finished runs, newest first: id, task, dataset, seed, start time, test metrics and params."""
        from mlflow.entities import ViewType

        names = [f"neuralbench-{task}"] if task else None
        if names is None:
            exps = self.client.search_experiments(view_type=ViewType.ACTIVE_ONLY)
        else:
            exps = [e for n in names if (e := self.client.get_experiment_by_name(n)) is not None]
        exps = [e for e in exps if e.name.startswith("neuralbench-")]
        if not exps:
            return []
        runs = self.client.search_runs(
            [e.experiment_id for e in exps],
            filter_string="attributes.status = 'FINISHED'",
            order_by=["attributes.start_time DESC"],
            max_results=max_results,
        )
        out = []
        for r in runs:
            tags = r.data.tags
            out.append(
                {
                    "run_id": r.info.run_id,
                    "task": tags.get("neuralbench.task", ""),
                    "dataset": tags.get("neuralbench.dataset", ""),
                    "seed": tags.get("neuralbench.seed", ""),
                    "start_time": r.info.start_time,
                    "metrics": dict(r.data.metrics),
                    "params": dict(r.data.params),
                }
            )
        return out

    @contextlib.contextmanager
    def _download(self, run_id: str, path: str) -> Iterator[Path]:
        """A local copy of one artifact of a run, deleted again when the `with` block ends."""
        if not RUN_ID.match(run_id or ""):
            raise RunNotFound(f"not a run id: {run_id!r}")
        try:
            self.client.get_run(run_id)
        except Exception as exc:
            raise RunNotFound(f"no run {run_id}") from exc
        with tempfile.TemporaryDirectory(prefix="neuralbench-", dir=self.scratch_dir()) as dst:
            yield Path(self.client.download_artifacts(run_id, path, dst))

    def scratch_dir(self) -> Path:
        """Where this store's temporary copies of artifacts live: under its own root (one place for all
        writable state, and nothing shared with other processes' temp folders)."""
        path = self.root / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def load_report(self, run_id: str) -> dict[str, Any]:
        """The report.json of a finished run."""
        with self._download(run_id, "report.json") as path:
            return json.loads(path.read_text())

    def load_predictions(self, run_id: str) -> dict[str, np.ndarray]:
        """Test-set predictions per model, as stored (no pickle)."""
        with self._download(run_id, "predictions.npz") as path, np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    def run_task(self, run_id: str) -> str:
        """The task a stored run belongs to (its neuralbench.task tag)."""
        if not RUN_ID.match(run_id or ""):
            raise RunNotFound(f"not a run id: {run_id!r}")
        try:
            return self.client.get_run(run_id).data.tags.get("neuralbench.task", "")
        except Exception as exc:
            raise RunNotFound(f"no run {run_id}") from exc

    def load_model(self, run_id: str, name: str) -> Any:
        """Rebuild one model of a run from its config + weights, with the loader its task declares for it
        (ModelSpec.loader): the file never names the code that reads it."""
        if not MODEL_NAME.match(name or ""):
            raise RunNotFound(f"not a model name: {name!r}")
        task = self.run_task(run_id)
        spec = REGISTRY[task].models.get(name) if task in REGISTRY else None
        if spec is None or spec.loader is None:
            raise RunNotFound(f"run {run_id[:8]} ({task or 'no task'}) has no stored model {name!r}")
        with self._download(run_id, f"models/{name}") as folder:
            read_meta(folder)  # size- and dimension-checked before any loader sees it
            try:
                return spec.loader(folder)
            except ConfigError:
                raise
            except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError, OSError) as exc:
                # a config.json that names the right kind but misses or mistypes its fields (edited, or damaged)
                raise ConfigError(f"stored model {name!r} is damaged or incomplete ({type(exc).__name__})") from exc
