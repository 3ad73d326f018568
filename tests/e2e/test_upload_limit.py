"""SECURITY.md item 1 against the real server: an upload over `server.maxUploadSize`, sent as a chunked PUT without
Content-Length, is refused with bounded memory, and the server keeps serving."""

from __future__ import annotations

import socket
import time
import tomllib
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def _server_pid(port: int) -> int | None:
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"streamlit" in b" ".join(cmd) and str(port).encode() in cmd:
            return int(proc.name)
    return None


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_a_chunked_upload_over_the_limit_is_refused_with_bounded_memory(streamlit_url: str) -> None:
    limit_mb = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]["maxUploadSize"]
    parts = urlsplit(streamlit_url)
    pid = _server_pid(parts.port)
    assert pid, "the e2e server's process was not found"
    before = _rss_mb(pid)
    chunk = b"\0" * (1 << 20)
    sent = 0
    refused = False
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        head = (
            f"PUT /_stcore/upload_file/00000000-0000-0000-0000-000000000000/f1 HTTP/1.1\r\n"
            f"Host: {parts.netloc}\r\nContent-Type: application/octet-stream\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        )
        sock.sendall(head.encode())
        try:
            for _ in range(limit_mb * 2):  # twice the limit, one MiB a chunk, no Content-Length
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                sent += len(chunk)
            sock.sendall(b"0\r\n\r\n")
            answer = sock.recv(200)
            refused = not answer or not answer.startswith(b"HTTP/1.1 2")
        except (ConnectionResetError, BrokenPipeError, TimeoutError):
            refused = True  # the server closed the connection before the body was all sent
    assert refused, "an oversized chunked upload was accepted"
    # the server is still healthy and did not buffer the whole body
    with urllib.request.urlopen(f"{streamlit_url}/_stcore/health", timeout=10) as resp:
        assert resp.read().strip() == b"ok"
    # twice the limit was sent: a server that buffered it would have grown by 2x maxUploadSize (measured: +1 MB)
    time.sleep(0.5)
    grown = _rss_mb(pid) - before
    assert grown < 32, f"server memory grew by {grown:.0f} MB while refusing {sent >> 20} MiB"
