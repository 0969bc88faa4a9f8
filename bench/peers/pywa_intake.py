"""pywa's own verify-and-parse over the benchmark corpus (fincelo make bench).

Usage: pywa_intake.py CORPUS.json SECONDS; prints one JSON result.

Per body, what pywa's framework integrations do for a POST (pywa/_helpers.py):
`WhatsApp.webhook_update_validator(body, signature)` (HMAC-SHA256 over the raw
bytes), then `WhatsApp.webhook_update_handler(body)`, which parses the JSON,
resolves the handler type for the update's field and constructs the typed
update (Message, MessageStatus, TemplateStatusUpdate, ...). Handlers are
registered for the kinds in the corpus so pywa builds the typed objects; the
callbacks do nothing. Duplicate-update skipping is off, or every pass after
the first would be skipped. pywa reads only entry[0].changes[0] of a body.
"""
import json
import logging
import sys
import time
from importlib.metadata import version

from pywa import WhatsApp, types

logging.disable(logging.CRITICAL)

corpus = json.load(open(sys.argv[1]))
secs = float(sys.argv[2])
bodies = [(b["kind"], b["body"].encode("utf-8"), b["signature"]) for b in corpus["bodies"]]

wa = WhatsApp(
    phone_id=corpus["phone_number_id"],
    token="bench-token",
    server=None,
    verify_token="bench-verify",
    app_secret=corpus["app_secret"],
    validate_updates=True,
    skip_duplicate_updates=False,
    filter_updates=False,
)
seen = {}


def count(kind):
    def cb(_client, update):
        seen[kind] = seen.get(kind, 0) + 1

    return cb


wa.on_message()(count("message"))
wa.on_message_status()(count("message_status"))
wa.on_template_status_update()(count("template_status"))
for name in ("on_template_quality_update", "on_template_category_update"):
    if hasattr(wa, name):
        getattr(wa, name)()(count(name[3:]))


def one(body, sig):
    err = wa.webhook_update_validator(body, sig)
    if err is not None:
        return err[1]
    return wa.webhook_update_handler(body)[1]


statuses = {}
for kind, body, sig in bodies:
    code = one(body, sig)
    statuses[f"{kind}:{code}"] = statuses.get(f"{kind}:{code}", 0) + 1
per_pass = dict(seen)

for _ in range(20):
    for _, body, sig in bodies:
        one(body, sig)

n = 0
cpu0 = time.process_time()
t0 = time.perf_counter()
while time.perf_counter() - t0 < secs:
    for _, body, sig in bodies:
        one(body, sig)
    n += len(bodies)
wall = time.perf_counter() - t0
cpu = time.process_time() - cpu0
print(json.dumps({
    "implementation": f"pywa {version('pywa')} (CPython {sys.version.split()[0]})",
    "bodies": n, "wall_secs": wall, "cpu_secs": cpu,
    "bodies_per_sec_wall": n / wall, "bodies_per_cpu_sec": n / cpu,
    "outcomes": {"http_status_by_kind": statuses, "typed_updates_per_pass": per_pass},
}))
