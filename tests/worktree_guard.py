"""Pytest hooks that fail the session when the tests changed the git work tree (`make test` must leave it as it
found it: TESTING.md).

`git status --porcelain` is recorded when pytest configures (before any test runs) and again when the session
finishes. Every path git reports (modified, added, deleted or renamed tracked files, and untracked files that are not
git-ignored) is compared by its status and by the hash of its content, so a file that was already dirty before the
run and gets rewritten counts as a change too. Nothing tracked is skipped.

Two environment variables relax it, and `make test` unsets both:
- NEURALBENCH_SCREENSHOTS_DIR: the folder `make screenshots` refreshes on purpose; changes inside it are allowed.
- NEURALBENCH_SKIP_WORKTREE_CHECK=1: skip the check (for a run while someone else edits the same tree); the
  terminal summary says it was skipped.

tests/conftest.py imports these hooks; any other conftest.py can import them the same way.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

SKIP_ENV = "NEURALBENCH_SKIP_WORKTREE_CHECK"
SHOTS_ENV = "NEURALBENCH_SCREENSHOTS_DIR"

_start_key = pytest.StashKey[dict[str, tuple[str, str | None]] | None]()
_top_key = pytest.StashKey[Path | None]()
_report_key = pytest.StashKey[list[str]]()


def _git(top: Path, *args: str) -> str:
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # never take index.lock from under someone's commit
    out = subprocess.run(["git", "-C", str(top), *args], env=env, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip() or f"git {' '.join(args)} exited with {out.returncode}")
    return out.stdout


def _digest(path: Path) -> str | None:
    try:
        if path.is_symlink():
            return "link:" + os.readlink(path)
        if path.is_file():
            return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "unreadable"
    return None


def snapshot(top: Path) -> dict[str, tuple[str, str | None]]:
    """Every path `git status` reports, with its two-letter status and the hash of its current content."""
    fields = _git(top, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--ignore-submodules=none")
    fields = fields.split("\0")
    state: dict[str, tuple[str, str | None]] = {}
    i = 0
    while i < len(fields):
        entry = fields[i]
        i += 1
        if len(entry) < 4:
            continue
        code, path = entry[:2], entry[3:]
        if "R" in code or "C" in code:  # renames and copies: the source path follows
            source = fields[i] if i < len(fields) else ""
            i += 1
            code = f"{code} from {source}"
        state[path] = (code, _digest(top / path))
    return state


def changed_paths(
    start: dict[str, tuple[str, str | None]], end: dict[str, tuple[str, str | None]], allowed: Path | None = None,
    top: Path | None = None,
) -> list[str]:
    """The paths whose git status or content differ between two snapshots, as 'STATUS path' lines (sorted);
    paths inside `allowed` (an absolute folder inside `top`) are left out."""
    lines = []
    for path in sorted(set(start) | set(end)):
        if start.get(path) == end.get(path):
            continue
        if allowed is not None and top is not None and (top / path).resolve().is_relative_to(allowed):
            continue
        code = end[path][0].strip() if path in end else "back to the committed state:"
        rewritten = path in start and path in end and start[path][0] == end[path][0]
        lines.append(f"{code} {path}" + (" (content rewritten)" if rewritten else ""))
    return lines


def _allowed_dir(top: Path) -> Path | None:
    raw = os.environ.get(SHOTS_ENV, "").strip()
    if not raw:
        return None
    path = Path(raw)
    return (path if path.is_absolute() else top / path).resolve()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_start_key] = None
    config.stash[_report_key] = []
    if hasattr(config, "workerinput") or os.environ.get(SKIP_ENV, "").strip() in {"1", "true", "yes"}:
        return
    try:
        top = Path(_git(config.rootpath, "rev-parse", "--show-toplevel").strip())
        config.stash[_top_key] = top
        config.stash[_start_key] = snapshot(top)
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        config.stash[_report_key] = [f"work-tree check skipped: not a usable git checkout ({exc})"]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    start = config.stash.get(_start_key, None)
    if start is None:
        return
    top = config.stash[_top_key]
    try:
        end = snapshot(top)
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        config.stash[_report_key] = [f"work-tree check could not run git at the end: {exc}"]
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        return
    lines = changed_paths(start, end, _allowed_dir(top), top)
    if lines:
        config.stash[_report_key] = [
            f"the test session changed the git work tree ({len(lines)} path(s)); tests must write only to tmp_path "
            "or git-ignored folders such as test-artifacts/:",
            *(f"    {line}" for line in lines),
            f"If you or someone else edited these files while the tests ran, rerun; {SKIP_ENV}=1 skips this check.",
        ]
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    config = terminalreporter.config
    report = config.stash.get(_report_key, [])
    if os.environ.get(SKIP_ENV, "").strip() in {"1", "true", "yes"} and not hasattr(config, "workerinput"):
        report = [f"work-tree check skipped ({SKIP_ENV} is set)"]
    if not report:
        return
    failed = config.stash.get(_start_key, None) is not None
    terminalreporter.write_sep("=", "work tree changed" if failed else "work-tree check", red=failed, yellow=not failed)
    for line in report:
        terminalreporter.write_line(line)
