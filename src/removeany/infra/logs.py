"""What `serve` logs: request lines without the secrets and personal data a URL can carry,
and other lines without the email addresses quoted in them."""

from __future__ import annotations

import copy
import logging
import re
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


def server_log_config() -> dict[str, Any]:
    """uvicorn's own logging, with query values hidden from its access log."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["hide_query_values"] = {"()": HideQueryValues}
    config["handlers"]["access"]["filters"] = ["hide_query_values"]
    return config
