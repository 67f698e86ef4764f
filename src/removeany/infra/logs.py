"""What `serve` logs: request lines without the secrets and personal data a URL can carry,
and other lines without the email addresses quoted in them."""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Iterable
from typing import Any

HIDDEN = "[hidden]"
ADDRESS = "[address]"
# Whatever looks like an email address (an SMTP server's refusal quotes the recipient's).
_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)*")


def hide_addresses(text: str) -> str:
    """`550 5.1.1 <ada@example.com>: User unknown` -> `550 5.1.1 <[address]>: User unknown`:
    the code and the server's words stay for the operator, the address stays out of the log."""
    return _ADDRESS.sub(ADDRESS, text)


def hide_query_values(path: str) -> str:
    """`/verify?token=abc&lang=zh` -> `/verify?token=[hidden]&lang=[hidden]`: the names say
    what was asked, the values stay out of the log."""
    base, sep, query = path.partition("?")
    if not sep:
        return path
    names = (part.partition("=") for part in query.split("&"))
    return base + "?" + "&".join(name + (f"={HIDDEN}" if eq else "") for name, eq, _ in names)


class HideQueryValues(logging.Filter):
    """Access log lines keep each query parameter's name, not its value: emailed links carry
    single-use tokens (/verify, whose token also holds the address, /reset-password,
    /account/not-me), remove.bg clients may send their API key as `?api_key=`, and admins
    search the audit log by address (`?q=`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn's access record: (client address, method, path with query, version, status)
        if isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, version, status = record.args
            record.args = (client, method, hide_query_values(str(path)), version, status)
        return True


class LeaveOutPaths(logging.Filter):
    """Access log lines for the given paths are dropped: a load balancer's or orchestrator's
    probes, every few seconds from each of them, would bury the requests people made."""

    def __init__(self, paths: Iterable[str]) -> None:
        super().__init__()
        self.paths = frozenset(paths)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) == 5:
            return str(record.args[2]).partition("?")[0] not in self.paths
        return True


def server_log_config(*, quiet: Iterable[str] = ()) -> dict[str, Any]:
    """uvicorn's own logging, with query values hidden from its access log and the requests
    for the `quiet` paths left out of it."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    filters = config.setdefault("filters", {})
    filters["leave_out_paths"] = {"()": LeaveOutPaths, "paths": list(quiet)}
    filters["hide_query_values"] = {"()": HideQueryValues}
    config["handlers"]["access"]["filters"] = ["leave_out_paths", "hide_query_values"]
    return config
