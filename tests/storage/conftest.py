"""A real S3-compatible server (moto's server mode) and the storage pointed at a fresh bucket.

CI (`.ci/run`) starts one and passes its URL in MLMANAGER_TEST_S3_ENDPOINT; without it the
fixture starts moto's threaded server itself on a free loopback port, so `pytest` alone runs
these tests too. They are never skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from config.env import ObjectStorage

ENDPOINT_VARIABLE = "MLMANAGER_TEST_S3_ENDPOINT"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    configured = os.environ.get(ENDPOINT_VARIABLE, "").strip()
    if configured:
        yield configured.rstrip("/")
        return
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@dataclass
class S3:
    endpoint: str
    bucket: str
    client: Any  # boto3's S3 client, for looking behind the storage's back

    def stored_keys(self) -> list[str]:
        response = self.client.list_objects_v2(Bucket=self.bucket)
        return sorted(item["Key"] for item in response.get("Contents", ()))


@pytest.fixture
def s3(s3_endpoint: str, settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> S3:
    """The default storage on a new bucket (under a prefix, as a shared bucket would be used);
    this machine's cache and scratch files in `tmp_path/storage-work`."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    bucket = f"mlmanager-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    location = ObjectStorage(
        bucket=bucket,
        prefix="files",
        endpoint_url=s3_endpoint,
        region="us-east-1",
        addressing_style="path",
    )
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": location.storage_options(),
        },
    }
    settings.MLMANAGER_STORAGE_WORK_DIR = tmp_path / "storage-work"
    return S3(endpoint=s3_endpoint, bucket=bucket, client=client)
