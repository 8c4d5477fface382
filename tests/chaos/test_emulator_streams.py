"""The AWS emulator's transaction rollback with a stream: a cancelled transaction leaves the
stream as it was, a committed one adds its records, and the stream's earlier records are
shared by the backup, not copied (which made each transaction slower as the stream grew)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from pickup.adapters.dynamodb import products_table_definition
from pickup.emulator import AWSEmulator, share_stream_records_on_copy


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[Any]:
    emulator = AWSEmulator()
    url = emulator.start()
    try:
        yield boto3.client(
            "dynamodb",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
    finally:
        emulator.stop()


def stream_records(client: Any, table: str) -> list[dict[str, Any]]:
    streams = boto3.client(
        "dynamodbstreams",
        endpoint_url=client.meta.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    arn = client.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]


def take(quantity: int) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": "stock",
            "Key": {"id": {"S": "bun"}},
            "UpdateExpression": "SET available = available - :q",
            "ConditionExpression": "available >= :q",
            "ExpressionAttributeValues": {":q": {"N": str(quantity)}},
        }
    }


def test_a_cancelled_transaction_leaves_the_stream_as_it_was(dynamodb: Any) -> None:
    dynamodb.create_table(**products_table_definition("stock"))
    dynamodb.put_item(TableName="stock", Item={"id": {"S": "bun"}, "available": {"N": "5"}})
    dynamodb.put_item(TableName="stock", Item={"id": {"S": "tart"}, "available": {"N": "1"}})
    assert len(stream_records(dynamodb, "stock")) == 2

    dynamodb.transact_write_items(TransactItems=[take(2)])
    assert len(stream_records(dynamodb, "stock")) == 3

    tart = {
        "Update": {
            **take(2)["Update"],
            "Key": {"id": {"S": "tart"}},
        }
    }
    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(TransactItems=[take(1), tart])  # tart is short
    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    records = stream_records(dynamodb, "stock")
    assert len(records) == 3  # the bun write that was rolled back left no record
    item = dynamodb.get_item(TableName="stock", Key={"id": {"S": "bun"}}, ConsistentRead=True)
    assert item["Item"]["available"] == {"N": "3"}


def test_a_reader_of_the_stream_sees_writes_made_after_a_cancelled_transaction(
    dynamodb: Any,
) -> None:
    dynamodb.create_table(**products_table_definition("stock2"))
    dynamodb.put_item(TableName="stock2", Item={"id": {"S": "bun"}, "available": {"N": "5"}})
    streams = boto3.client(
        "dynamodbstreams",
        endpoint_url=dynamodb.meta.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    arn = dynamodb.describe_table(TableName="stock2")["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    first = streams.get_records(ShardIterator=iterator)
    assert len(first["Records"]) == 1

    short = {"Update": {**take(9)["Update"], "TableName": "stock2"}}
    with pytest.raises(ClientError):
        dynamodb.transact_write_items(TransactItems=[short])
    dynamodb.transact_write_items(
        TransactItems=[{"Update": {**take(2)["Update"], "TableName": "stock2"}}]
    )

    later = streams.get_records(ShardIterator=first["NextShardIterator"])
    assert [r["dynamodb"]["NewImage"]["available"] for r in later["Records"]] == [{"N": "3"}]


def test_a_table_backup_shares_the_stream_records() -> None:
    from moto.dynamodb.models.table import StreamShard

    share_stream_records_on_copy()
    shard = StreamShard.__new__(StreamShard)
    shard.table = {"name": "stock"}
    shard.items = [object(), object()]
    backup = copy.deepcopy(shard)
    assert backup.items == shard.items and backup.items is not shard.items
    assert all(a is b for a, b in zip(backup.items, shard.items, strict=True))
    backup.items.append(object())
    assert len(shard.items) == 2
