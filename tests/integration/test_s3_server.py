"""The local S3 server is a real one: boto3 and the minio client put, list, get and delete objects."""

from __future__ import annotations

import hashlib
import io
import os
import uuid

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from minio import Minio

from devstack.servers.s3 import S3Server

pytestmark = pytest.mark.integration


def bucket_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def test_boto3_create_put_list_get_delete(s3: S3Server) -> None:
    # a plain boto3 client, configured only with what a user gets from the server: endpoint, keys, region
    client = boto3.client(
        "s3",
        endpoint_url=s3.endpoint,
        aws_access_key_id=s3.access_key,
        aws_secret_access_key=s3.secret_key,
        region_name=s3.region,
    )
    bucket = bucket_name("boto3")
    client.create_bucket(Bucket=bucket)
    assert bucket in {b["Name"] for b in client.list_buckets()["Buckets"]}

    for i in range(25):
        client.put_object(Bucket=bucket, Key=f"input/part-{i:03d}.jsonl", Body=f'{{"n": {i}}}\n'.encode())
    client.put_object(Bucket=bucket, Key="other/readme.txt", Body=b"not input")

    listed = client.list_objects_v2(Bucket=bucket, Prefix="input/")
    assert listed["KeyCount"] == 25
    assert [o["Key"] for o in listed["Contents"]][:2] == ["input/part-000.jsonl", "input/part-001.jsonl"]
    assert client.get_object(Bucket=bucket, Key="input/part-007.jsonl")["Body"].read() == b'{"n": 7}\n'

    client.delete_object(Bucket=bucket, Key="input/part-007.jsonl")
    assert client.list_objects_v2(Bucket=bucket, Prefix="input/")["KeyCount"] == 24
    with pytest.raises(ClientError) as missing:
        client.get_object(Bucket=bucket, Key="input/part-007.jsonl")
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"


def test_boto3_multipart_upload_round_trips_bytes_exactly(s3: S3Server) -> None:
    client = s3.client()
    bucket = bucket_name("multipart")
    client.create_bucket(Bucket=bucket)
    payload = os.urandom(12 * 1024 * 1024)
    config = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)

    client.upload_fileobj(io.BytesIO(payload), bucket, "big.bin", Config=config)

    head = client.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == len(payload)
    body = client.get_object(Bucket=bucket, Key="big.bin")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(payload).hexdigest()


def test_minio_client_put_list_get_delete(s3: S3Server) -> None:
    host = s3.endpoint.removeprefix("http://")
    client = Minio(host, access_key=s3.access_key, secret_key=s3.secret_key, secure=False, region=s3.region)
    bucket = bucket_name("minio")
    client.make_bucket(bucket)
    assert client.bucket_exists(bucket)

    for i in range(10):
        data = f"line {i}\n".encode()
        client.put_object(bucket, f"out/{i}.txt", io.BytesIO(data), len(data), content_type="text/plain")

    names = sorted(o.object_name for o in client.list_objects(bucket, prefix="out/", recursive=True))
    assert names == sorted(f"out/{i}.txt" for i in range(10))
    response = client.get_object(bucket, "out/3.txt")
    try:
        assert response.read() == b"line 3\n"
    finally:
        response.close()
        response.release_conn()

    client.remove_object(bucket, "out/3.txt")
    remaining = [o.object_name for o in client.list_objects(bucket, prefix="out/", recursive=True)]
    assert len(remaining) == 9 and "out/3.txt" not in remaining


def test_wrong_secret_is_rejected(s3: S3Server) -> None:
    client = boto3.client(
        "s3",
        endpoint_url=s3.endpoint,
        aws_access_key_id=s3.access_key,
        aws_secret_access_key="not-the-secret",
        region_name=s3.region,
    )
    with pytest.raises(ClientError) as denied:
        client.list_buckets()
    assert denied.value.response["Error"]["Code"] in ("SignatureDoesNotMatch", "AccessDenied", "InvalidAccessKeyId")


def test_objects_written_by_one_client_are_read_by_the_other(s3: S3Server) -> None:
    bucket = bucket_name("cross")
    s3.create_buckets([bucket])
    s3.client().put_object(Bucket=bucket, Key="from-boto3.json", Body=b'{"ok": true}')
    minio = Minio(s3.endpoint.removeprefix("http://"), s3.access_key, s3.secret_key, secure=False, region=s3.region)
    response = minio.get_object(bucket, "from-boto3.json")
    try:
        assert response.read() == b'{"ok": true}'
    finally:
        response.close()
        response.release_conn()


def test_a_new_server_on_old_data_keeps_its_objects_port_and_keys(tmp_path) -> None:
    first = S3Server(tmp_path)
    try:
        first.start()
        first.create_buckets(["kept"])
        first.client().put_object(Bucket="kept", Key="a.txt", Body=b"still here")
    finally:
        first.stop()

    second = S3Server(tmp_path)
    try:
        second.start()
        assert (second.endpoint, second.secret_key) == (first.endpoint, first.secret_key)
        assert second.client().get_object(Bucket="kept", Key="a.txt")["Body"].read() == b"still here"
    finally:
        second.stop()
