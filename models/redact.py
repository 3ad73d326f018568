"""Credentials out of every text a person or a file sees (SECURITY.md item 27).

`redact(text)` scrubs, anywhere inside a longer text (an exception message, a traceback, a log line):
- the user info of URIs: `http://alice:s3cret@host` and `https://token@host` become `http://***@host`
- secret-looking query values: `?token=...`, `&access_token=...`, `password`, `secret`, `key`, `api_key`, `sig`
- `Authorization: Bearer ...` / `Basic ...` headers and bare `Bearer <token>`
- `NAME=value` / `"name": "value"` pairs whose name ends in password, secret, token or an api / access /
  secret / private key (`MLFLOW_TRACKING_PASSWORD=...`, `MLFLOW_TRACKING_TOKEN=...`, `AWS_SECRET_ACCESS_KEY=...`)
- the literal values of such variables in this process's environment, and the password of
  MLFLOW_TRACKING_URI, wherever they appear on their own.

`install_log_redaction()` makes every log record (message, arguments and exception text) and every printed
warning pass through `redact`. Standard library only, and it imports nothing of this project: the pages, the
engine (bench/) and the data loaders (data/) can all import it without an import cycle.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
_SECRET_QUERY_WORDS = r"(?:pass|pwd|secret|token|key|auth|credential|signature|sig)"
SECRET_QUERY_KEYS = re.compile(_SECRET_QUERY_WORDS, re.I)

# scheme://USERINFO@ (the user info may hold '@' itself: backtracking keeps the last '@' before the host)
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]{0,30}://)[^/?#\s'\"<>\\]{1,512}@")
_QUERY = re.compile(r"(?i)([?&;][\w.~%\-]{0,60}?" + _SECRET_QUERY_WORDS + r"[\w.~%\-]{0,60}=)[^&#\s'\"<>\\]+")
_AUTH_HEADER = re.compile(
    r"(?i)(\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)(?:(bearer|basic|digest|token|negotiate)\s+)?[^\s\"',;}]+"
)
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]+=*")
_SECRET_NAME = r"(?:password|passwd|secret|token|credentials?|(?:api|access|secret|private|client|auth)[_\-]?key)"
_ASSIGN = re.compile(
    r"(?i)(" + _SECRET_NAME + r")([\"']?\s*[:=]\s*)(?:([\"'])[^\"'\n]{0,1000}\3|\*\*\*|[^\s\"',;&}\])]+)"
)
_SECRET_ENV = re.compile(r"(?:PASSWORD|PASSWD|SECRET|TOKEN|_KEY|CREDENTIALS?)$", re.I)
_NOT_A_SECRET = re.compile(r"(?i)^(?:true|false|yes|no|on|off|none|null|\d+)$")
MIN_SECRET_CHARS = 6  # shorter environment values are not hunted for on their own (too many false matches)


def _assign(m: re.Match[str]) -> str:
    if m.group(3):  # a quoted value: keep the quotes
        return f"{m.group(1)}{m.group(2)}{m.group(3)}{MASK}{m.group(3)}"
    return f"{m.group(1)}{m.group(2)}{MASK}"


def _auth(m: re.Match[str]) -> str:
    return f"{m.group(1)}{m.group(2) + ' ' if m.group(2) else ''}{MASK}"


def _known_secrets() -> list[str]:
    """Secret values of this process's environment (longest first), to be scrubbed wherever they appear."""
    found = set()
    for name, value in os.environ.items():
        if _SECRET_ENV.search(name) and len(value) >= MIN_SECRET_CHARS and not _NOT_A_SECRET.match(value):
            found.add(value)
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if "@" in uri:
        try:
            password = urlsplit(uri).password
        except ValueError:
            password = None
        if password and len(password) >= 4:
            found.add(password)
    return sorted(found, key=len, reverse=True)


def redact(text: Any) -> str:
    """`text` (anything: it is turned into a string) with every credential pattern replaced by ***."""
    out = str(text)
    if not out:
        return out
    out = _USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", out)
    out = _AUTH_HEADER.sub(_auth, out)
    out = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", out)
    out = _QUERY.sub(lambda m: f"{m.group(1)}{MASK}", out)
    out = _ASSIGN.sub(_assign, out)
    for secret in _known_secrets():
        out = out.replace(secret, MASK)
    return out


def redact_uri(uri: str) -> str:
    """`uri` without credentials: user:password@ and secret-looking query values become ***."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "(unreadable URI)"
    if "@" in parts.netloc:
        parts = parts._replace(netloc=MASK + "@" + parts.netloc.rsplit("@", 1)[1])
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if any(SECRET_QUERY_KEYS.search(k) for k, _ in pairs):
        parts = parts._replace(query=urlencode([(k, MASK if SECRET_QUERY_KEYS.search(k) else v) for k, v in pairs],
                                               safe="*"))  # fmt: skip
    if parts == urlsplit(uri):
        return redact(uri)  # structurally clean (urlunsplit would drop the empty authority of sqlite:////abs/path)
    return redact(urlunsplit(parts))


# ------------------------------------------------------------------------------------------------ logging


def _scrub_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a broken format string is logging's own business
        return
    clean = redact(message)
    if clean != message:
        record.msg, record.args = clean, ()
    if record.exc_info and record.exc_info[1] is not None:
        text = logging.Formatter().formatException(record.exc_info)
        clean = redact(text)
        if clean != text:  # formatters print exc_text when exc_info is gone
            record.exc_info, record.exc_text = None, clean
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def install_log_redaction() -> None:
    """Make every log record of this process, and every warning it prints, pass through `redact` (idempotent).

    Done with the log record factory rather than a logging.Filter: a filter on a logger does not see the
    records of its child loggers, and handlers added later (Streamlit's, MLflow's, Ray's) would lack it.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_neuralbench_redacts", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _scrub_record(record)
        return record

    factory._neuralbench_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)

    format_warning = warnings.formatwarning
    if not getattr(format_warning, "_neuralbench_redacts", False):

        def formatwarning(*args: Any, **kwargs: Any) -> str:
            return redact(format_warning(*args, **kwargs))

        formatwarning._neuralbench_redacts = True  # type: ignore[attr-defined]
        warnings.formatwarning = formatwarning
