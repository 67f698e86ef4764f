"""File storage for originals and results. Writes are atomic: a reader never sees half a file.

Two backends behind one interface: a local folder (embedded default) and an S3-compatible
bucket (scaled deployments). `download_url` lets routes redirect to a presigned URL instead of
streaming bytes through the web process; local storage has none, so routes stream.

Optionally (`REMOVEANY_ENCRYPT_FILES`) either backend is wrapped in `EncryptedStorage`, so the
files on disk or in the bucket are AES-256-GCM ciphertext and only this server can read them."""

from __future__ import annotations

import logging
import os
import random
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from removeany.errors import DomainError

if TYPE_CHECKING:
    from removeany.infra.settings import Settings

log = logging.getLogger(__name__)

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$")
# Answers below 500 that S3 and S3-compatible stores give for a passing overload, not a
# refusal: retried like a 5xx.
_TRANSIENT_CODES = frozenset(
    {"SlowDown", "RequestTimeout", "Throttling", "ThrottlingException", "TooManyRequests"}
)
_T = TypeVar("_T")


class StorageUnavailable(DomainError):
    """The bucket cannot be reached or fails (after the client's retries): a passing outage,
    answered 503 instead of a bare 500; a submission it interrupts stored and charged nothing."""

    status_code = 503
    code = "storage_unavailable"

    def __init__(self) -> None:
        super().__init__(
            "File storage is unavailable right now. Nothing was charged; please try again in "
            "a few minutes."
        )


class StorageMisconfigured(StorageUnavailable):
    """The bucket answers but refuses this server: wrong credentials, a missing bucket, no
    permission to write. Waiting will not help, so it is never retried; users see
    `storage_unavailable` (nothing charged) while ``reason`` tells the operator which setting
    to fix."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


# S3's answers that only the operator can fix: what is wrong, and what to check.
_REFUSALS = {
    "InvalidAccessKeyId": (
        "the store does not know the access key",
        "check REMOVEANY_S3_ACCESS_KEY_ID",
    ),
    "SignatureDoesNotMatch": (
        "the secret key does not belong to the access key",
        "check REMOVEANY_S3_SECRET_ACCESS_KEY",
    ),
    "NoSuchBucket": (
        "the bucket {bucket!r} does not exist",
        "check REMOVEANY_S3_BUCKET (and REMOVEANY_S3_ENDPOINT_URL, REMOVEANY_S3_REGION)",
    ),
    "InvalidBucketName": ("{bucket!r} is not a valid bucket name", "check REMOVEANY_S3_BUCKET"),
    "AccessDenied": (
        "the access key may not read, write or delete objects in the bucket {bucket!r}",
        "grant REMOVEANY_S3_ACCESS_KEY_ID's user s3:GetObject, s3:PutObject, s3:DeleteObject "
        "and s3:ListBucket on it",
    ),
    # A HEAD's answer has no body, so no code says which refusal it was.
    "403": (
        "the store refused the request",
        "check REMOVEANY_S3_ACCESS_KEY_ID, REMOVEANY_S3_SECRET_ACCESS_KEY and the key's "
        "permissions on the bucket {bucket!r}",
    ),
}
_NO_CREDENTIALS = (
    "set REMOVEANY_S3_ACCESS_KEY_ID and REMOVEANY_S3_SECRET_ACCESS_KEY (or give the machine "
    "AWS credentials of its own)"
)


@contextmanager
def _reachable(bucket: str) -> Iterator[None]:
    """Connection failures, timeouts, S3's own 5xx answers and its throttling (SlowDown, 429)
    become StorageUnavailable; refusals only the operator can fix (credentials, the bucket,
    permissions) StorageMisconfigured; other answers (no such key) pass through."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    try:
        yield
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise StorageMisconfigured(f"{exc}; {_NO_CREDENTIALS}") from exc
    except BotoCoreError as exc:
        raise StorageUnavailable() from exc
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        code = exc.response.get("Error", {}).get("Code")
        if code in _REFUSALS:
            what, fix = (part.format(bucket=bucket) for part in _REFUSALS[code])
            raise StorageMisconfigured(f"{what} ({code}); {fix}") from exc
        if status >= 500 or status == 429 or code in _TRANSIENT_CODES:
            raise StorageUnavailable() from exc
        raise


class Storage(Protocol):
    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes: ...
    def delete(self, key: str) -> None: ...
    def exists(self, key: str) -> bool: ...
    def download_url(self, key: str, *, filename: str, media_type: str) -> str | None: ...


def check_key(key: str) -> str:
    if not _KEY.match(key) or ".." in key.split("/"):
        raise ValueError(f"invalid storage key {key!r}")
    return key


class LocalStorage:
    """Files under one root folder; keys are relative paths chosen by the platform, never users."""

    def __init__(self, root: Path):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def download_url(self, key: str, *, filename: str, media_type: str) -> str | None:
        return None

    def check_ready(self) -> None:
        """The folder is there and this process may write to it (not, say, remounted
        read-only after disk errors). Nothing is written: probes come every few seconds."""
        if not self.root.is_dir():
            raise StorageUnavailable()
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageMisconfigured(
                f"this process may not write to {self.root}; check REMOVEANY_DATA_DIR"
            )


class S3Storage:
    """Objects in an S3-compatible bucket (AWS, MinIO, Ceph, R2...). A PUT is atomic in S3."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        prefix: str = "",
        presign_seconds: int = 900,
        client: Any = None,
        attempts: int = 5,
        connect_timeout: float = 10,
        read_timeout: float = 60,
    ):
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.presign_seconds = presign_seconds
        self.client = client or boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(
                signature_version="s3v4",
                retries={"max_attempts": attempts, "mode": "standard"},
                # A store that does not even accept the connection within this is down: the
                # default (60 s, five tries) would hold one call for five minutes.
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                s3={"addressing_style": "path" if endpoint_url else "auto"},
            ),
        )

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def put(self, key: str, data: bytes) -> None:
        with _reachable(self.bucket):
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def get(self, key: str) -> bytes:
        try:
            with _reachable(self.bucket):
                response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
                body: bytes = response["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise FileNotFoundError(key) from None
        return body

    def delete(self, key: str) -> None:
        with _reachable(self.bucket):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            with _reachable(self.bucket):
                self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def download_url(self, key: str, *, filename: str, media_type: str) -> str | None:
        """A short-lived URL the client fetches from the bucket directly."""
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": self._key(key),
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
                "ResponseContentType": media_type,
            },
            ExpiresIn=self.presign_seconds,
        )
        return url

    def check_ready(self) -> None:
        """One HEAD of the bucket: the store answers, takes the credentials and has the bucket
        (a HEAD's refusal has no body, so a missing bucket is a bare 404). Nothing is
        written: probes come every few seconds."""
        from botocore.exceptions import ClientError

        try:
            with _reachable(self.bucket):
                self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                raise
            what, fix = (part.format(bucket=self.bucket) for part in _REFUSALS["NoSuchBucket"])
            raise StorageMisconfigured(f"{what} (404); {fix}") from exc

    def ensure_bucket(self) -> None:
        """Create the bucket if missing (tests, first start against MinIO)."""
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket)


class EncryptedStorage:
    """Encrypts every file with AES-256-GCM under a key derived from the instance's secret key.

    The storage key is the associated data, so a file copied to another key does not decrypt.
    Files stored before encryption was switched on (no header) are still read, so turning it
    on needs no migration; they age out with the retention sweep. Presigned URLs would hand
    out ciphertext, so downloads are always streamed (decrypted) by the app.
    """

    HEADER = b"RAENC1"

    def __init__(self, inner: Storage, secret_key: str):
        self.inner = inner
        self._aead = AESGCM(
            HKDF(
                algorithm=hashes.SHA256(),
                length=32,
                salt=b"removeany-files",
                info=b"stored images",
            ).derive(secret_key.encode())
        )

    def put(self, key: str, data: bytes) -> None:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, data, check_key(key).encode())
        self.inner.put(key, self.HEADER + nonce + sealed)

    def get(self, key: str) -> bytes:
        raw = self.inner.get(key)
        if not raw.startswith(self.HEADER):
            return raw
        body = raw[len(self.HEADER) :]
        try:
            return self._aead.decrypt(body[:12], body[12:], key.encode())
        except InvalidTag:
            raise ValueError(
                f"stored file {key!r} does not decrypt: it was written under another secret key "
                "or altered"
            ) from None

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def download_url(self, key: str, *, filename: str, media_type: str) -> str | None:
        return None


class RetryingStorage:
    """Another storage whose calls, when the store is unavailable (`StorageUnavailable`), are
    tried again with exponential backoff for up to `within` seconds counted from the start of
    the first failing call, one budget shared by every call made through it (a worker makes
    one per job attempt, so a job waits out a brief bucket outage instead of failing). Other
    errors (no such file, a refusal: `StorageMisconfigured`) are never retried. `stopping`
    (the process is shutting down) and `lost` (the job is no longer this attempt's: settled,
    cancelled or re-queued elsewhere) cut a wait short: the last StorageUnavailable is raised
    at once."""

    FIRST_DELAY = 0.5
    MAX_DELAY = 30.0
    # How often a wait looks at `lost` (it sleeps on `stopping`).
    LOOK_EVERY = 0.25

    def __init__(
        self,
        inner: Storage,
        *,
        within: float,
        stopping: threading.Event,
        lost: threading.Event | None = None,
    ):
        self.inner = inner
        self.within = within
        self.stopping = stopping
        self.lost = lost or threading.Event()
        self._deadline: float | None = None
        self._delay = self.FIRST_DELAY

    def _call(self, what: str, call: Callable[[], _T]) -> _T:
        while True:
            began = time.monotonic()
            try:
                return call()
            except StorageMisconfigured:
                raise
            except StorageUnavailable:
                if self._deadline is None:
                    # From the start of the first failing call: the client's own tries count.
                    self._deadline = began + self.within
                left = self._deadline - time.monotonic()
                if left <= 0 or self._halted():
                    raise
                # Full jitter: workers that lost the store together do not return together.
                wait = min(left, random.uniform(0.5, 1.0) * self._delay)
                self._delay = min(self._delay * 2, self.MAX_DELAY)
                log.warning("file storage unavailable (%s); retrying in %.1fs", what, wait)
                if self._halted_within(wait):
                    raise

    def _halted(self) -> bool:
        return self.stopping.is_set() or self.lost.is_set()

    def _halted_within(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True as soon as the wait is to end early."""
        until = time.monotonic() + seconds
        while not self._halted():
            left = until - time.monotonic()
            if left <= 0:
                return False
            self.stopping.wait(min(left, self.LOOK_EVERY))
        return True

    def put(self, key: str, data: bytes) -> None:
        self._call(f"put {key}", lambda: self.inner.put(key, data))

    def get(self, key: str) -> bytes:
        return self._call(f"get {key}", lambda: self.inner.get(key))

    def delete(self, key: str) -> None:
        self._call(f"delete {key}", lambda: self.inner.delete(key))

    def exists(self, key: str) -> bool:
        return self._call(f"exists {key}", lambda: self.inner.exists(key))

    def download_url(self, key: str, *, filename: str, media_type: str) -> str | None:
        return self.inner.download_url(key, filename=filename, media_type=media_type)


def make_storage(settings: Settings, *, secret_key: str | None = None) -> Storage:
    """The configured backend, wrapped in `EncryptedStorage` when files are to be encrypted."""
    storage = _backend(settings)
    if settings.encrypt_files:
        if not secret_key:
            raise ValueError("REMOVEANY_ENCRYPT_FILES needs the instance's secret key")
        return EncryptedStorage(storage, secret_key)
    return storage


def check_storage(settings: Settings) -> None:
    """At start (`serve`, `worker`): write, read back and delete a small probe object, so
    wrong credentials, a missing bucket or one that refuses writes stop the process now
    (`StorageMisconfigured`, which names the setting), not the first user's job. A store
    that cannot be reached is only warned about: it may still be starting, and jobs wait
    out outages (`RetryingStorage`)."""
    storage = _backend(settings)
    probe = f"startup-checks/{uuid.uuid4().hex}"
    try:
        storage.put(probe, b"removeany start-up check")
        storage.get(probe)
        storage.delete(probe)
    except StorageMisconfigured:
        raise
    except StorageUnavailable as exc:
        cause = exc.__cause__ or exc
        log.warning("file storage unreachable at start (%s); jobs will wait for it", cause)


def readiness_check(settings: Settings, *, timeout: float) -> Callable[[], None]:
    """For readiness probes: a cheap look at the configured store, raising
    `StorageMisconfigured` or `StorageUnavailable` as jobs would meet them. Unlike
    `check_storage` it writes nothing, and a bucket's client tries once within `timeout`."""
    if settings.storage_backend == "s3":
        quick = _s3_backend(settings, attempts=1, connect_timeout=timeout, read_timeout=timeout)
        return quick.check_ready
    return LocalStorage(settings.files_dir).check_ready


def _backend(settings: Settings) -> Storage:
    if settings.storage_backend == "s3":
        return _s3_backend(settings)
    return LocalStorage(settings.files_dir)


def _s3_backend(
    settings: Settings, *, attempts: int = 5, connect_timeout: float = 10, read_timeout: float = 60
) -> S3Storage:
    """The bucket the settings name, its client making `attempts` tries per call."""
    if not settings.s3_bucket:
        raise StorageMisconfigured(
            "REMOVEANY_S3_BUCKET must be set when REMOVEANY_STORAGE_BACKEND=s3"
        )
    # An empty setting (`REMOVEANY_S3_ENDPOINT_URL=` for AWS, as docs/deployment.md
    # shows) means unset: boto3 would take "" as the endpoint or the key itself.
    return S3Storage(
        settings.s3_bucket,
        endpoint_url=settings.s3_endpoint_url or None,
        region=settings.s3_region,
        access_key_id=settings.s3_access_key_id or None,
        secret_access_key=settings.s3_secret_access_key or None,
        prefix=settings.s3_prefix,
        presign_seconds=settings.s3_presign_seconds,
        attempts=attempts,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
