"""Bounds on the work one request may start in the server's threads (SECURITY.md items 23, 28, 29).

Parsing an upload, decoding an image or extracting a zip runs in the Streamlit session's own thread. Each
such step is linear and capped in size where it is written; this module bounds how many of them run at
once across all sessions of the server, so a burst of uploads queues briefly instead of starving
everyone, and a request that cannot get a slot in time is refused with a message instead of piling up.

It also holds the one delimiter guess both CSV readers use: a linear count of fields outside quotes over
the first rows (csv.Sniffer's regular expressions are quadratic on some inputs and hold the GIL meanwhile,
which froze every session of the server for tens of seconds on a 64 KB upload).
"""

from __future__ import annotations

import csv
import io
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# At most this many uploads are parsed / decoded / extracted at once in one server process (2 cores).
HEAVY_SLOTS = max(1, int(os.environ.get("NEURALBENCH_UPLOAD_SLOTS", "2")))
SLOT_WAIT_SECONDS = 30.0
# the delimiter is guessed from at most this many characters / rows at the start of the file
SNIFF_CHARS = 16 * 1024
SNIFF_ROWS = 20

_SLOTS = threading.BoundedSemaphore(HEAVY_SLOTS)
_HELD = threading.local()  # how many nested heavy_slot blocks the current thread is inside


class ServerBusy(RuntimeError):
    """Too much upload work is running already; the message says so in words meant for the user."""


@contextmanager
def heavy_slot(what: str = "upload", wait: float | None = None) -> Iterator[None]:
    """Hold one of the server's few upload-work slots while the block runs; wait at most `wait` seconds
    (default SLOT_WAIT_SECONDS, read at call time).

    Re-entrant per thread: a parse function that calls another guarded one (load_csv -> read_csv_table)
    keeps the slot it holds instead of waiting for a second one (which could deadlock a full server)."""
    depth = getattr(_HELD, "depth", 0)
    if depth:
        _HELD.depth = depth + 1
        try:
            yield
        finally:
            _HELD.depth = depth
        return
    if not _SLOTS.acquire(timeout=SLOT_WAIT_SECONDS if wait is None else wait):
        raise ServerBusy(f"The server is busy with other uploads; your {what} was not processed. Try again shortly.")
    _HELD.depth = 1
    try:
        yield
    finally:
        _HELD.depth = 0
        _SLOTS.release()


def sniff_delimiter(text: str, candidates: str = ",\t;|", default: str = ",") -> str:
    """The delimiter among `candidates` that splits the first rows into the same number (>= 2) of fields.

    Linear and bounded: only the first SNIFF_CHARS characters / SNIFF_ROWS rows are read, each candidate by
    the C csv reader (fields counted outside quotes). The most consistent candidate wins, ties go to the
    earlier one in `candidates`; `default` when no candidate gives a header of two fields or more.
    """
    sample = text[:SNIFF_CHARS]
    if len(text) > SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rfind("\n")]  # no half row at the end
    best, best_score = default, -1.0
    for delimiter in candidates:
        counts: list[int] = []
        try:
            for row in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter):
                if row and any(cell.strip() for cell in row):
                    counts.append(len(row))
                    if len(counts) > SNIFF_ROWS:
                        break
        except csv.Error:
            continue
        if not counts or counts[0] < 2:
            continue
        rows = counts[1:]
        score = sum(n == counts[0] for n in rows) / len(rows) if rows else 1.0
        if score > best_score:
            best, best_score = delimiter, score
    return best
