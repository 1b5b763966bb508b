"""A real S3 API on loopback for tests: moto's server mode, in a thread of the test process.

The code under test talks to it over HTTP with boto3 exactly as it would talk to AWS or MinIO: signing,
multipart uploads and presigned URLs all cross a real socket. Nothing in invoiceflow is patched.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

ACCESS_KEY_ID = "test-access-key"
SECRET_ACCESS_KEY = "test-secret-key"
REGION = "eu-west-1"


@contextmanager
def run_s3_server() -> Iterator[str]:
    """Start the server on a free loopback port; yield its endpoint URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_client(endpoint_url: str) -> Any:
    """A plain boto3 client for arranging and inspecting buckets (not the code under test)."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=Config(s3={"addressing_style": "path"}),
    )


def create_bucket(client: Any) -> str:
    """A new, uniquely named bucket, so tests sharing one server never see each other's objects."""
    name = f"invoiceflow-test-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    return name
