"""A bucket that refuses this server (wrong keys, no such bucket, no right to write) is found
at start: `serve` and `worker` end with one `error:` line naming the setting to fix (exit 2),
and such a refusal met later is never waited on as if it were an outage.

A real S3 API server (moto's server mode) checks signatures and IAM policies here: its access
keys are made through its own IAM API, one that may do everything and one that may only read.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from removeany.infra.settings import Settings
from removeany.infra.storage import (
    RetryingStorage,
    S3Storage,
    StorageMisconfigured,
    check_storage,
)
from tests.batches._scale import redis_broker
from tests.helpers import closed_port

moto_server = pytest.importorskip("moto.server")
from moto.core.authorization import enable_iam_authentication  # noqa: E402

BUCKET = "removeany-checked"


@dataclass(frozen=True)
class Store:
    endpoint: str
    writer: tuple[str, str]
    reader: tuple[str, str]


def _user(iam: object, name: str, actions: list[str]) -> tuple[str, str]:
    iam.create_user(UserName=name)  # type: ignore[attr-defined]
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions}]}
    policy["Statement"][0]["Resource"] = "*"  # type: ignore[index]
    iam.put_user_policy(  # type: ignore[attr-defined]
        UserName=name, PolicyName="files", PolicyDocument=json.dumps(policy)
    )
    key = iam.create_access_key(UserName=name)["AccessKey"]  # type: ignore[attr-defined]
    return str(key["AccessKeyId"]), str(key["SecretAccessKey"])


@pytest.fixture(scope="module")
def store() -> Iterator[Store]:
    """The server with IAM enforced while this module runs (off again for other modules)."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="setup",
        aws_secret_access_key="setup",
    )
    writer = _user(iam, "removeany", ["s3:*"])
    reader = _user(iam, "auditor", ["s3:GetObject", "s3:ListBucket"])
    S3Storage(
        BUCKET, endpoint_url=endpoint, access_key_id=writer[0], secret_access_key=writer[1]
    ).client.create_bucket(Bucket=BUCKET)
    try:
        with enable_iam_authentication():
            yield Store(endpoint, writer, reader)
    finally:
        server.stop()


def on_store(tmp_path: Path, store: Store, keys: tuple[str, str], bucket: str = BUCKET) -> Settings:
    return Settings(
        data_dir=tmp_path,
        storage_backend="s3",
        s3_bucket=bucket,
        s3_endpoint_url=store.endpoint,
        s3_access_key_id=keys[0],
        s3_secret_access_key=keys[1],
    )


def listed(store: Store) -> list[str]:
    client = S3Storage(
        BUCKET,
        endpoint_url=store.endpoint,
        access_key_id=store.writer[0],
        secret_access_key=store.writer[1],
    ).client
    return [str(o["Key"]) for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


@pytest.fixture
def no_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing in the environment, no credentials file, no instance metadata to fall back on."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # boto3's default session keeps the credentials it found for an earlier client.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)


def test_the_start_check_names_the_setting_to_fix(
    store: Store, tmp_path: Path, no_aws_credentials: None
) -> None:
    cases = {
        "InvalidAccessKeyId": (("AKIANOTAKEY", store.writer[1]), BUCKET),
        "SignatureDoesNotMatch": ((store.writer[0], "not-the-secret"), BUCKET),
        "NoSuchBucket": (store.writer, "removeany-not-made"),
        "AccessDenied": (store.reader, BUCKET),
        "Unable to locate credentials": (("", ""), BUCKET),
    }
    setting = {
        "InvalidAccessKeyId": "check REMOVEANY_S3_ACCESS_KEY_ID",
        "SignatureDoesNotMatch": "check REMOVEANY_S3_SECRET_ACCESS_KEY",
        "NoSuchBucket": "'removeany-not-made' does not exist (NoSuchBucket); check "
        "REMOVEANY_S3_BUCKET",
        "AccessDenied": "s3:PutObject",
        "Unable to locate credentials": "set REMOVEANY_S3_ACCESS_KEY_ID and "
        "REMOVEANY_S3_SECRET_ACCESS_KEY",
    }
    for problem, (keys, bucket) in cases.items():
        with pytest.raises(StorageMisconfigured) as refused:
            check_storage(on_store(tmp_path, store, keys, bucket))
        assert problem in refused.value.reason and setting[problem] in refused.value.reason
        assert refused.value.code == "storage_unavailable"  # what a user would be told
    check_storage(on_store(tmp_path, store, store.writer))
    assert listed(store) == []  # the probe is deleted again


def test_an_unreachable_store_at_start_is_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """It may still be starting (jobs wait out outages): the process starts, and says so."""
    settings = Settings(
        data_dir=tmp_path,
        storage_backend="s3",
        s3_bucket=BUCKET,
        s3_endpoint_url=f"http://127.0.0.1:{closed_port()}",
        s3_access_key_id="key",
        s3_secret_access_key="secret",
    )
    with caplog.at_level(logging.WARNING, "removeany.infra.storage"):
        check_storage(settings)
    assert "file storage unreachable at start" in caplog.text


def test_a_refusal_is_not_waited_on_like_an_outage(
    store: Store, tmp_path: Path, no_aws_credentials: None
) -> None:
    """Missing credentials were retried for the whole budget (STORAGE_RETRY_SECONDS) as if the
    bucket were down; now they end the call at once, as other refusals already did."""
    for keys, bucket in (
        (("", ""), BUCKET),
        (store.writer, "removeany-not-made"),
        (("AKIANOTAKEY", "secret"), BUCKET),
    ):
        inner = S3Storage(
            bucket,
            endpoint_url=store.endpoint,
            access_key_id=keys[0] or None,
            secret_access_key=keys[1] or None,
        )
        files = RetryingStorage(inner, within=60, stopping=threading.Event())
        began = time.monotonic()
        with pytest.raises(StorageMisconfigured):
            files.get("originals/abc")
        assert time.monotonic() - began < 10


def _removeany(
    command: str, tmp_path: Path, values: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMOVEANY_")}
    env.update({f"REMOVEANY_{k.upper()}": v for k, v in values.items()})
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "removeany",
            command,
            *(["--port", str(closed_port())] if command == "serve" else []),
        ],
        env=env,
        text=True,
        capture_output=True,
        timeout=60,  # before: `serve` served and `worker` worked on, on a refusing bucket
        check=False,
    )


def test_serve_and_worker_refuse_to_start_on_a_refusing_bucket(
    store: Store, tmp_path: Path, model_dir: Path
) -> None:
    broker_url, queue = redis_broker()
    common = {
        "data_dir": str(tmp_path / "data"),
        "model_dir": str(model_dir),
        "storage_backend": "s3",
        "s3_endpoint_url": store.endpoint,
        "queue_backend": "celery",
        "broker_url": broker_url,
        "queue_name": queue,
    }
    wrong_key = {"s3_bucket": BUCKET, "s3_access_key_id": "AKIANOTAKEY"}
    wrong_key["s3_secret_access_key"] = store.writer[1]
    no_bucket = {"s3_bucket": "removeany-not-made", "s3_access_key_id": store.writer[0]}
    no_bucket["s3_secret_access_key"] = store.writer[1]
    for command, values, fix in (
        ("serve", wrong_key, "check REMOVEANY_S3_ACCESS_KEY_ID"),
        ("worker", no_bucket, "check REMOVEANY_S3_BUCKET"),
    ):
        done = _removeany(command, tmp_path, {**common, **values})
        assert done.returncode == 2, (command, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: file storage: "), done.stderr
        assert fix in lines[0]
