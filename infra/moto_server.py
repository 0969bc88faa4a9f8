"""moto's server (local AWS) with DynamoDB's per-item atomicity.

DynamoDB applies each request, condition included, atomically: two
conditional writes to one item never both pass, and a read never sees a
write half done. moto's threaded server does not promise that: its
UpdateItem stores the bare key of a new item and then applies the update
expression in place, so two racing claims can both pass `attribute_not_exists`
and a racing GetItem can see an item without attributes. The service's
exactly-once guarantee rests on DynamoDB's atomicity, so the emulator must
provide it: one lock around DynamoDB request handling does. SQS and Secrets
Manager stay concurrent (an SQS long poll must not hold up anything else).

Usage: python infra/moto_server.py -H 127.0.0.1 -p PORT  (moto_server's own flags)
"""

import sys
import threading

from moto.dynamodb.responses import DynamoHandler
from moto.server import main

_DYNAMODB_LOCK = threading.Lock()
_call_action = DynamoHandler.call_action


def _atomic_call_action(self):
    with _DYNAMODB_LOCK:
        return _call_action(self)


DynamoHandler.call_action = _atomic_call_action

if __name__ == "__main__":
    sys.exit(main())
