"""`make test` leaves the work tree as it found it (TESTING.md): tests/worktree_guard.py fails the session when the
tests changed anything git reports. Checked the way it really runs: a pytest session in a throwaway git repository
whose conftest.py imports the same hooks, with a test inside that writes (or does not write) into the tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import tests.conftest as root_conftest
from tests import worktree_guard

ROOT = Path(__file__).resolve().parent.parent
GIT = shutil.which("git")
pytestmark = pytest.mark.skipif(GIT is None, reason="git is not installed")


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, timeout=60)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A committed repository with a tracked file, a git-ignored folder and a conftest wired like tests/conftest.py."""
    r = tmp_path / "repo"
    (r / "docs" / "screenshots").mkdir(parents=True)
    (r / "docs" / "screenshots" / "home.png").write_bytes(b"committed picture")
    (r / "README.md").write_text("committed readme\n")
    (r / ".gitignore").write_text("test-artifacts/\n__pycache__/\n")
    (r / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    (r / "conftest.py").write_text(
        "from tests.worktree_guard import pytest_configure, pytest_sessionfinish, pytest_terminal_summary  # noqa\n"
    )
    _git(r, "init", "-q")
    _git(r, "add", "-A")
    _git(r, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "start")
    return r


def _session(repo: Path, body: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run one pytest session in `repo` whose single test runs `body` (with `ROOT` bound to the repository)."""
    (repo / "test_probe.py").write_text(
        f"from pathlib import Path\nROOT = Path(__file__).parent\n\ndef test_probe():\n    {body}\n"
    )
    full_env = {k: v for k, v in os.environ.items() if k not in {worktree_guard.SKIP_ENV, worktree_guard.SHOTS_ENV}}
    full_env.update(PYTHONPATH=str(ROOT), **env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "test_probe.py"],
        cwd=repo, env=full_env, capture_output=True, text=True, timeout=120,
    )


def test_clean_session_passes(repo: Path) -> None:
    # an untracked, non-ignored file existing before the run (test_probe.py itself) is part of the start state
    out = _session(repo, "(ROOT / 'test-artifacts' / 'screenshots').mkdir(parents=True); "
                         "(ROOT / 'test-artifacts' / 'screenshots' / 'home.png').write_bytes(b'new')")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "work tree changed" not in out.stdout


@pytest.mark.parametrize(
    ("body", "listed"),
    [
        ("(ROOT / 'docs' / 'screenshots' / 'home.png').write_bytes(b'rewritten by a test')", "M docs/screenshots/home.png"),
        ("(ROOT / 'README.md').unlink()", "D README.md"),
        ("(ROOT / 'docs' / 'new.png').write_bytes(b'x')", "?? docs/new.png"),
        ("(ROOT / 'data' / 'deep').mkdir(parents=True); (ROOT / 'data' / 'deep' / 'x.json').write_text('{}')",
         "?? data/deep/x.json"),
    ],
    ids=["modify-tracked", "delete-tracked", "new-untracked-file", "new-untracked-folder"],
)
def test_session_fails_and_lists_what_changed(repo: Path, body: str, listed: str) -> None:
    out = _session(repo, body)
    assert out.returncode == pytest.ExitCode.TESTS_FAILED, out.stdout + out.stderr
    assert "1 passed" in out.stdout  # the test itself passed: the session fails because of the tree
    assert "work tree changed" in out.stdout
    assert listed in out.stdout


def test_compares_against_the_start_not_against_clean(repo: Path) -> None:
    """`make test` may run on a tree with uncommitted work: dirt that was there before is fine, touching it is not."""
    (repo / "README.md").write_text("uncommitted edit by the developer\n")
    same = _session(repo, "assert (ROOT / 'README.md').read_text().startswith('uncommitted')")
    assert same.returncode == 0, same.stdout + same.stderr
    rewritten = _session(repo, "(ROOT / 'README.md').write_text('a test rewrote the dirty file\\n')")
    assert rewritten.returncode == pytest.ExitCode.TESTS_FAILED
    assert "M README.md (content rewritten)" in rewritten.stdout


def test_screenshot_folder_is_allowed_only_when_asked(repo: Path) -> None:
    """`make screenshots` names docs/screenshots on purpose; it relaxes nothing else."""
    shot = "(ROOT / 'docs' / 'screenshots' / 'home.png').write_bytes(b'refreshed')"
    assert _session(repo, shot, NEURALBENCH_SCREENSHOTS_DIR="docs/screenshots").returncode == 0
    _git(repo, "checkout", "-q", "--", "docs")
    other = _session(repo, f"{shot}; (ROOT / 'README.md').write_text('x')", NEURALBENCH_SCREENSHOTS_DIR="docs/screenshots")
    assert other.returncode == pytest.ExitCode.TESTS_FAILED
    assert "M README.md" in other.stdout and "docs/screenshots/home.png" not in other.stdout


def test_skip_is_explicit(repo: Path) -> None:
    out = _session(repo, "(ROOT / 'README.md').write_text('x')", NEURALBENCH_SKIP_WORKTREE_CHECK="1")
    assert out.returncode == 0
    assert "work-tree check skipped" in out.stdout


def test_this_suite_runs_the_guard() -> None:
    """tests/conftest.py carries the hooks, so every session under tests/ (and so `make test`) is checked."""
    for hook in ("pytest_configure", "pytest_sessionfinish", "pytest_terminal_summary"):
        assert getattr(root_conftest, hook) is getattr(worktree_guard, hook)
    makefile = (ROOT / "Makefile").read_text()
    test_recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "env -u NEURALBENCH_SCREENSHOTS_DIR -u NEURALBENCH_SKIP_WORKTREE_CHECK" in test_recipe


def test_e2e_screenshots_default_to_test_artifacts(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("playwright.sync_api", reason="Python Playwright is not installed")
    from tests.e2e.test_browser import screenshots_dir

    monkeypatch.delenv("NEURALBENCH_SCREENSHOTS_DIR", raising=False)
    assert screenshots_dir() == ROOT / "test-artifacts" / "screenshots"
    ignored = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", "test-artifacts/screenshots/home.png"])
    assert ignored.returncode == 0, "test-artifacts/ must stay git-ignored"
    monkeypatch.setenv("NEURALBENCH_SCREENSHOTS_DIR", "docs/screenshots")
    assert screenshots_dir() == ROOT / "docs" / "screenshots"
