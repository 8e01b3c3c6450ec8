"""`s3://bucket/prefix`: an object store on Amazon S3 or any S3-compatible server, via boto3.

Conditional writes use S3's own preconditions: `IfNoneMatch='*'` to create only if absent and
`IfMatch=<etag>` to replace only an unchanged object. S3 answers 412 when a condition fails
(and 409 `ConditionalRequestConflict` while a competing conditional write is in flight; a
missing object under `IfMatch` answers 404): all three become `PreconditionFailed`.
`endpoint_url` points at another S3-compatible server; credentials and region come from the
standard AWS chain (environment, config files, instance roles).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .store import (
    Data,
    ObjectNotFound,
    ObjectStore,
    PreconditionFailed,
    Stored,
    StoreUnavailable,
    check_key,
)

CONFLICT_CODES = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
MISSING_CODES = {"NoSuchKey", "404", "NotFound"}
CHUNK = 1024 * 1024


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class S3Store(ObjectStore):
    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None,
                 client: Any = None) -> None:
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.uri = f"s3://{bucket}/{self.prefix}"
        self.client = client or boto3.client(
            "s3", endpoint_url=endpoint_url,
            config=Config(retries={"mode": "standard", "max_attempts": 3},
                          connect_timeout=10, read_timeout=60))

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _fail(self, key: str, e: Exception, conditional: bool = False) -> Exception:
        if isinstance(e, ClientError):
            code = _code(e)
            if conditional and (code in CONFLICT_CODES or code in MISSING_CODES):
                return PreconditionFailed(f"{self.uri}{key}: precondition failed ({code})")
            if code in MISSING_CODES:
                return ObjectNotFound(f"{self.uri}{key}: no such object")
        return StoreUnavailable(f"{self.uri}{key}: {e}")

    def get(self, key: str) -> Stored:
        try:
            reply = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            return Stored(reply["Body"].read(), reply["ETag"])
        except (ClientError, BotoCoreError) as e:
            raise self._fail(key, e) from e

    def download(self, key: str, out: BinaryIO) -> None:
        try:
            reply = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            for chunk in reply["Body"].iter_chunks(CHUNK):
                out.write(chunk)
        except (ClientError, BotoCoreError) as e:
            raise self._fail(key, e) from e

    def _put(self, key: str, data: Data, **condition: str) -> str:
        try:
            reply = self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data,
                                           **condition)
            return str(reply["ETag"])
        except (ClientError, BotoCoreError) as e:
            raise self._fail(key, e, conditional=True) from e

    def put_if_absent(self, key: str, data: Data) -> str:
        return self._put(key, data, IfNoneMatch="*")

    def put_if_match(self, key: str, data: Data, etag: str) -> str:
        return self._put(key, data, IfMatch=etag)

    def list(self, prefix: str) -> Iterator[str]:
        keys = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix)
            for page in pages:
                keys += [o["Key"][len(self.prefix):] for o in page.get("Contents", ())]
        except (ClientError, BotoCoreError) as e:
            raise self._fail(prefix, e) from e
        return iter(sorted(keys))

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (ClientError, BotoCoreError) as e:
            raise self._fail(key, e) from e
