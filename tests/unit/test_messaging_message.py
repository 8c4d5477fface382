"""Queue messages as handlers see them, and the retry backoff (no I/O)."""

from __future__ import annotations

import json

import pytest

from pickup.messaging.consumer import Message, Poison, backoff_seconds


def test_a_received_message_and_a_lambda_record_read_the_same() -> None:
    polled = Message.from_sqs(
        {
            "MessageId": "m1",
            "ReceiptHandle": "r1",
            "Body": '{"type": "order.placed"}',
            "Attributes": {"ApproximateReceiveCount": "3", "SentTimestamp": "1700000000000"},
            "MessageAttributes": {"event_type": {"DataType": "String", "StringValue": "x"}},
        }
    )
    pushed = Message.from_lambda(
        {
            "messageId": "m1",
            "receiptHandle": "r1",
            "body": '{"type": "order.placed"}',
            "attributes": {"ApproximateReceiveCount": "3", "SentTimestamp": "1700000000000"},
            "messageAttributes": {"event_type": {"dataType": "String", "stringValue": "x"}},
        }
    )
    assert polled == pushed
    assert polled.receive_count == 3 and polled.attributes == {"event_type": "x"}
    assert polled.json() == {"type": "order.placed"}


def test_an_sns_envelope_is_unwrapped() -> None:
    wrapped = {"Type": "Notification", "Message": json.dumps({"type": "order.ready"})}
    assert Message("m", json.dumps(wrapped), "r").json() == {"type": "order.ready"}


@pytest.mark.parametrize("body", ["", "not json", "[1, 2]", '"text"', "null"])
def test_a_body_that_is_not_a_json_object_is_poison(body: str) -> None:
    with pytest.raises(Poison):
        Message("m", body, "r").json()


def test_the_backoff_grows_with_each_receive_and_is_capped() -> None:
    delays = [backoff_seconds(count, base=2, ceiling=60) for count in range(1, 9)]
    assert 1.6 <= delays[0] <= 2
    assert 12.8 <= delays[3] <= 16
    assert all(delay <= 60 for delay in delays)
    assert delays[-1] >= 48
