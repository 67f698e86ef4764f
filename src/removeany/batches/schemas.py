"""What the API shows of a batch and its items."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

# An item's state (its job's): what GET /batches/{id}/items?status= filters on.
ItemStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class RejectedFile(BaseModel):
    path: str
    code: str
    message: str


class BatchCounts(BaseModel):
    queued: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0


class BatchOut(BaseModel):
    id: str
    name: str
    service: str
    options: dict[str, Any]
    status: str  # running | cancelling | cancelled | completed
    total: int
    finished: int
    progress: float  # finished / total, 0..1
    # While items are left: seconds until they are done at the pace so far (null until one
    # item is done, and once nothing is left to run).
    eta_seconds: int | None
    counts: BatchCounts
    charged: int
    total_bytes: int
    total_pixels: int
    rejected: list[RejectedFile]
    created_at: datetime
    cancelled_at: datetime | None
    finished_at: datetime | None
    items_url: str
    events_url: str
    results_url: str


class BatchItemOut(BaseModel):
    job_id: str
    relative_path: str
    status: str
    cost: int
    charged: int
    error_code: str | None
    error_message: str | None
    result_url: str | None
    result_path: str | None
    finished_at: datetime | None
