"""Domain errors: every error a user can cause has a stable code, a sentence and an HTTP status."""

from __future__ import annotations


class DomainError(Exception):
    """Raised by services; routes map it to a response without knowing the details."""

    status_code: int = 400
    code: str = "bad_request"
    # The site's page the sentence sends its reader to, written in it as a path
    # ("/legal/accept"): enough on the site's own pages, not for an API client or the
    # command line, which are shown `addressed`.
    page: str | None = None

    def __init__(self, message: str, *, code: str | None = None, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code

    def addressed(self, base_url: str) -> str:
        """The sentence for a reader who is not on the site: the page it names by its whole
        address under `base_url` (REMOVEANY_BASE_URL), which a script can show or log."""
        if self.page is None:
            return self.message
        return self.message.replace(self.page, base_url.rstrip("/") + self.page, 1)


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Unauthorized(DomainError):
    status_code = 401
    code = "unauthorized"


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"
