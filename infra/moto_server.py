"""moto's server (local AWS), with DynamoDB's per-item atomicity and SQS without per-depth costs.

DynamoDB applies each request, condition included, atomically: two
conditional writes to one item never both pass, and a read never sees a
write half done. moto's threaded server does not promise that: its
UpdateItem stores the bare key of a new item and then applies the update
expression in place, so two racing claims can both pass `attribute_not_exists`
and a racing GetItem can see an item without attributes. The service's
exactly-once guarantee rests on DynamoDB's atomicity, so the emulator must
provide it: one lock around DynamoDB request handling does. SQS and Secrets
Manager stay concurrent (an SQS long poll must not hold up anything else).

SQS: moto builds a queue's attributes, which counts its messages three
times over, on every message sent (for one setting) and three times for
every message received (for the retention period). Each SendMessage and
ReceiveMessage then costs time in proportion to the queue's depth: a
10-entry SendMessageBatch took 44 ms at 2,400 messages against 11 ms on an
empty queue, and a 10-message ReceiveMessage 300 ms at 600 messages. Real
SQS does neither, and a deep queue would slow everything that shares the
emulator. The counts are only built for GetQueueAttributes, the one request
that returns them.

Usage: python infra/moto_server.py -H 127.0.0.1 -p PORT  (moto_server's own flags)
"""

import sys
import threading

from moto.dynamodb.responses import DynamoHandler
from moto.server import main
from moto.sqs.models import Queue
from moto.sqs.responses import SQSResponse

_DYNAMODB_LOCK = threading.Lock()
_call_action = DynamoHandler.call_action


def _atomic_call_action(self):
    with _DYNAMODB_LOCK:
        return _call_action(self)


DynamoHandler.call_action = _atomic_call_action

_COUNTING = threading.local()
_COUNTS = {
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesDelayed",
    "ApproximateNumberOfMessagesNotVisible",
}
# Fail at start, not in a test, if a moto upgrade renames what this relies on.
assert _COUNTS <= set(Queue.BASE_ATTRIBUTES), "moto's SQS queue attributes changed"
_queue_attributes = Queue.attributes.fget
_get_queue_attributes = SQSResponse.get_queue_attributes


class _Uncounted:
    """A queue seen without its message counts (nothing shared is changed,
    so a GetQueueAttributes on another thread still counts)."""

    BASE_ATTRIBUTES = [a for a in Queue.BASE_ATTRIBUTES if a not in _COUNTS]

    def __init__(self, queue):
        self._queue = queue

    def __getattr__(self, name):
        return getattr(self._queue, name)


def _attributes(self):
    if getattr(_COUNTING, "active", False):
        return _queue_attributes(self)
    return _queue_attributes(_Uncounted(self))


def _get_queue_attributes_counted(self):
    _COUNTING.active = True
    try:
        return _get_queue_attributes(self)
    finally:
        _COUNTING.active = False


Queue.attributes = property(_attributes)
SQSResponse.get_queue_attributes = _get_queue_attributes_counted

if __name__ == "__main__":
    sys.exit(main())
