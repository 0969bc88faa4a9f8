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

DynamoDB's update expressions: moto's UpdateItem parses its expression three
times, and on each request runs two static checks (one SET/REMOVE/ADD/DELETE
clause each, no overlapping paths) on every level of the parsed tree, so
their cost grows with the square of the expression's actions; it then
deep-copies the tree with Python's generic `deepcopy`. The claim's
expression has ten actions: 7.9 ms per UpdateItem, and one request at a
time. Real DynamoDB has no such cost, and the sender makes two UpdateItems
per message. Here the parse is kept per expression (moto never changes a
parsed tree: its validator works on a copy), the two static checks run once
per (expression, attribute names) pair that has passed them (they read
nothing else), and a tree is copied node by node. Every request still has
its expression's values resolved against the item, its functions evaluated,
its types and key attributes checked, and its condition evaluated, as moto
does; a failing check raises as before and is never remembered.
About 3.5 ms per UpdateItem (200 claims, measured in-process).

DynamoDB's TransactWriteItems: moto backs up every table a transaction
names with a `deepcopy` of the whole table before it applies anything, so
that it can put the tables back if the transaction is cancelled. Each
transaction then costs time and memory in proportion to everything the
table holds: the cost ledger writes one transaction per priced status, and
a full-size fault run (2,000 alerts) slowed to a few requests a second
while the emulator grew past 8 GB. Real DynamoDB's cost does not depend on
the table's size. Here the backup is of the items the transaction names,
taken before moto runs it, and a cancelled transaction puts those items
back; every other step (conditions, the one-operation-per-item check, the
cancellation reasons) is moto's own. The tables themselves are not copied.

Usage: python infra/moto_server.py -H 127.0.0.1 -p PORT  (moto_server's own flags)
"""

import copy
import sys
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.dynamodb.parsing import ast_nodes, validators
from moto.dynamodb.parsing.expressions import UpdateExpressionParser
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

# Fail at start, not in a test, if a moto upgrade changes what the
# expression patches rely on.
_STATIC_CHECKS = (validators.ActionCountValidator, validators.OverlappingPathsValidator)
assert isinstance(UpdateExpressionParser.__dict__["make"], classmethod), "moto's UpdateExpressionParser.make changed"
assert "__deepcopy__" not in ast_nodes.Node.__dict__, "moto's expression nodes copy themselves now"

# Every parse, check and copy below runs inside `_DYNAMODB_LOCK`, so the
# caches need no lock of their own; they are bounded all the same.
_CACHE_LIMIT = 1024
_parse = UpdateExpressionParser.make.__func__
_parsed = {}
_passed_static = set()


def _make(cls, expression):
    tree = _parsed.get(expression)
    if tree is None:
        tree = _parse(cls, expression)
        tree._fwa_source = expression
        if len(_parsed) >= _CACHE_LIMIT:
            _parsed.clear()
        _parsed[expression] = tree
    return tree


_validator_init = validators.UpdateExpressionValidator.__init__
_validator_processors = validators.UpdateExpressionValidator.get_ast_processors
_validator_validate = validators.UpdateExpressionValidator.validate


def _init(self, expression, expression_attribute_names, *args, **kwargs):
    # A tree parsed elsewhere (none is, today) has no source and is checked in full.
    source = getattr(expression, "_fwa_source", None)
    try:
        key = (source, tuple(sorted((expression_attribute_names or {}).items())))
        hash(key)
    except TypeError:  # names that are not strings: moto's own checks answer them
        key = None
    self._fwa_static_key = None if source is None else key
    _validator_init(self, expression, expression_attribute_names, *args, **kwargs)


def _processors(self):
    processors = _validator_processors(self)
    key = getattr(self, "_fwa_static_key", None)
    if key is not None and key in _passed_static:
        processors = [p for p in processors if not isinstance(p, _STATIC_CHECKS)]
    return processors


def _validate(self):
    tree = _validator_validate(self)
    if self._fwa_static_key is not None:
        if len(_passed_static) >= _CACHE_LIMIT:
            _passed_static.clear()
        _passed_static.add(self._fwa_static_key)
    return tree


_ATOMS = (str, int, float, bool, type(None))


def _copy_node(self, memo):
    """What `deepcopy` makes of a node, without its generic per-object protocol."""
    new = object.__new__(type(self))
    memo[id(self)] = new
    for name, value in self.__dict__.items():
        if isinstance(value, _ATOMS):
            new.__dict__[name] = value
        elif name == "children":
            new.__dict__[name] = [v if isinstance(v, _ATOMS) else copy.deepcopy(v, memo) for v in value]
        else:
            new.__dict__[name] = copy.deepcopy(value, memo)
    return new


_node_types = {}


def _nodes_to_be_processed(self):
    # moto builds this tuple for every node visited; it depends only on the processor's class.
    types = _node_types.get(type(self))
    if types is None:
        types = _node_types[type(self)] = tuple(self._processing_map().keys())
    return types


UpdateExpressionParser.make = classmethod(_make)
validators.UpdateExpressionValidator.__init__ = _init
validators.UpdateExpressionValidator.get_ast_processors = _processors
validators.UpdateExpressionValidator.validate = _validate
ast_nodes.Node.__deepcopy__ = _copy_node
ast_nodes.DepthFirstTraverser.nodes_to_be_processed = _nodes_to_be_processed

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

# Fail at start, not in a test, if a moto upgrade changes what the
# transaction patch relies on.
assert "__deepcopy__" not in Table.__dict__, "moto's tables copy themselves now"
assert isinstance(Table.__dict__.get("has_range_key"), property), "moto's Table changed"
_transact_write_items = DynamoDBBackend.transact_write_items


def _table_kept(self, memo):
    return self


def _named_items(backend, transact_items):
    """(table, hash key, range key) of each operation moto can read a key from."""
    named = []
    for entry in transact_items:
        try:
            ((_, op),) = entry.items()
            table = backend.tables.get(op.get("TableName"))
            if table is None:
                continue
            key = op.get("Key")
            if key is None:
                attrs = op["Item"]
                key = {a: attrs[a] for a in (table.hash_key_attr, table.range_key_attr) if a}
            hash_key, range_key = backend.get_keys_value(table, key)
        except Exception:  # a malformed operation: moto's own checks answer it
            continue
        named.append((table, hash_key, range_key))
    return named


def _put_back(table, hash_key, range_key, item):
    if table.has_range_key:
        if item is None:
            table.items[hash_key].pop(range_key, None)
        else:
            table.items[hash_key][range_key] = item
    elif item is None:
        table.items.pop(hash_key, None)
    else:
        table.items[hash_key] = item


def _transact_write_items_backing_up_items(self, transact_items):
    # Runs inside `_DYNAMODB_LOCK`: nothing else copies a table meanwhile.
    backups = [
        (table, h, r, copy.deepcopy(table.get_item(h, r)))
        for table, h, r in _named_items(self, transact_items)
    ]
    Table.__deepcopy__ = _table_kept
    try:
        return _transact_write_items(self, transact_items)
    except BaseException:
        # Cancelled: moto "restored" the tables it kept; the items are put
        # back here, the first backup of an item last.
        for table, h, r, item in reversed(backups):
            _put_back(table, h, r, item)
        raise
    finally:
        del Table.__deepcopy__


DynamoDBBackend.transact_write_items = _transact_write_items_backing_up_items

if __name__ == "__main__":
    sys.exit(main())
