"""`make perf`: speed benchmarks of the product training loop (`python -m perf`, `--quick` for a smoke run).

The product loop (`bench.core.train.train`) is measured against a pytorch/examples-style MNIST loop run in the
same process on the same data and the same CNN (images/s and time to a test accuracy), and against
torch.matmul (achieved GFLOP/s as a share of the matmul rate). Results go to `perf/results.json`.
"""

from perf.measure import PerfSettings, measure_matmul, measure_throughput, run_benchmarks
from perf.report import Result, format_table, summary, write_json
from perf.workload import Workload, forward_flops_per_image, load_workload, train_flops_per_image

__all__ = [
    "PerfSettings",
    "Result",
    "Workload",
    "format_table",
    "forward_flops_per_image",
    "load_workload",
    "measure_matmul",
    "measure_throughput",
    "run_benchmarks",
    "summary",
    "train_flops_per_image",
    "write_json",
]
