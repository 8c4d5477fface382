"""The AWS emulator for development, tests and kind: a moto server that applies DynamoDB
requests one at a time.

moto's server handles requests in parallel threads without a lock, so its conditional writes
are not atomic: concurrent one-unit reservations against 20 units can "succeed" 21-23 times,
and a cancelled transaction's rollback (a restore of an earlier copy of the table) can undo
another request's committed write. DynamoDB itself applies conditional writes to an item
atomically; serialising the emulator's DynamoDB requests restores that guarantee. Other
services stay concurrent, so SQS long polls never hold anyone up.

moto also backs up a table before each transaction with a deep copy that includes every
record its stream ever had, so each TransactWriteItems got slower as the stream grew (a few
minutes of checkouts took the emulator to 1.7 GB and 5-second answers). Stream records never
change once written, so the backup now shares them (:func:`share_stream_records_on_copy`).
And a rollback put the backup in the table's place, stream shard included, so a consumer's
shard iterator kept reading a detached shard and never saw a later write (the chaos suite's
ledger missed half the reservations after the first refused transaction): the table now
keeps its shard, cut back to where it was (:func:`keep_stream_across_rollbacks`).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable
from typing import Any

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def share_stream_records_on_copy() -> None:
    """A deep copy of a DynamoDB stream shard copies its list of records, not the records
    (immutable dicts made when written): a transaction's rollback still restores the stream
    as it was, in time independent of the stream's length."""
    from moto.dynamodb.models.table import StreamShard

    def deepcopy_shard(shard: Any, memo: dict[int, Any]) -> Any:
        copied = copy.copy(shard)
        memo[id(shard)] = copied
        copied.table = copy.deepcopy(shard.table, memo)
        copied.items = list(shard.items)
        return copied

    StreamShard.__deepcopy__ = deepcopy_shard  # type: ignore[attr-defined]


def keep_stream_across_rollbacks() -> None:
    """After a cancelled transaction, each restored table gets back its own stream shard,
    without the records of the writes that were rolled back, so open shard iterators keep
    seeing what is written next."""
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.transact_write_items
    if getattr(original, "keeps_stream", False):
        return

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        shards = {
            name: (table.stream_shard, len(table.stream_shard.items))
            for name, table in self.tables.items()
            if table.stream_shard is not None
        }
        try:
            original(self, transact_items)
        except Exception:
            for name, (shard, length) in shards.items():
                table = self.tables.get(name)
                if table is not None and table.stream_shard is not shard:
                    del shard.items[length:]
                    shard.table = table
                    table.stream_shard = shard
            raise

    transact_write_items.keeps_stream = True  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


class SerialisedDynamoDB:
    """WSGI middleware letting one DynamoDB (and DynamoDB Streams) request in at a time."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        # moto's /moto-api/data.json checks each attribute serialises, then dumps them all: a
        # table written in between (an empty items dict gaining a DynamoType key) breaks the
        # dump with a 500, so the dump waits for DynamoDB too.
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB") or (
            environ.get("PATH_INFO") == "/moto-api/data.json"
        ):
            with self.lock:
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)


class AWSEmulator:
    """A moto server on ``host:port`` (port 0 picks a free one) in a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        share_stream_records_on_copy()
        keep_stream_across_rollbacks()
        app = SerialisedDynamoDB(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            host, port, app, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="aws-emulator", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> str:
        self._thread.start()
        return self.url

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
