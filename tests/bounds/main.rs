//! Issue 23: what one unauthenticated body may cost the webhook. The worst
//! bodies we can build go through the real handler (`webhook::handle`,
//! against moto) with a well-formed but wrong signature, so that all the
//! work done before the signature is checked is done; their cost is
//! measured on the handler's thread and compared with the body's size, with
//! a normal body, and with the same shape at four times the size.
//!
//! A binary of its own because it installs a counting global allocator
//! (`Counting`): it counts, per thread and only while a measurement is on,
//! allocations and the peak of live bytes. CPU time is the thread's own
//! (`/proc/thread-self/schedstat`), compared as ratios, never against a
//! wall-clock threshold: the machines that run this are shared.
//!
//! The bounds asserted (`fincelo::webhook::payload` module docs):
//! * memory: peak live bytes ≤ [`PEAK_PER_BODY_BYTE`] × body size, plus what
//!   a normal body costs;
//! * growth: four times the body (or the items) costs at most about four
//!   times the allocations and peak, and at most twice linear CPU (a
//!   quadratic reader would cost sixteen times the CPU; [`CPU_SLACK`]).
//! * every such body is refused (400 or 401) and writes nothing.

#[path = "../tests/helpers/mod.rs"]
mod helpers;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use bytes::Bytes;
use fincelo::webhook::{handle, WebhookRequest};
use http::{HeaderMap, HeaderValue, Method};

use helpers::{spawn_world, World};

// ---------------------------------------------------------------------------
// Counting allocator.
// ---------------------------------------------------------------------------

struct Counting;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

/// Records `delta` live bytes (and one allocation when `new`) on this
/// thread, if it is measuring. Never allocates.
fn note(delta: i64, new: bool) {
    let _ = ON.try_with(|on| {
        if on.get() {
            if new {
                ALLOCS.with(|a| a.set(a.get() + 1));
            }
            let live = LIVE.with(|l| {
                l.set(l.get() + delta);
                l.get()
            });
            PEAK.with(|p| p.set(p.get().max(live)));
        }
    });
}

// SAFETY: every method forwards to `System` with the same arguments; the
// bookkeeping touches only const-initialised thread-locals (no allocation).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as i64, true);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as i64, true);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(-(layout.size() as i64), false);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size as i64 - layout.size() as i64, true);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map(Duration::from_nanos)
        .unwrap_or_default()
}

/// What one request cost the handler's thread.
#[derive(Debug, Clone, Copy)]
struct Cost {
    status: u16,
    allocs: u64,
    /// Peak live bytes allocated during the request (the body itself was
    /// allocated before).
    peak: i64,
    cpu: Duration,
}

// ---------------------------------------------------------------------------
// The handler, measured.
// ---------------------------------------------------------------------------

struct Bench {
    rt: tokio::runtime::Runtime,
    world: World,
}

impl Bench {
    fn request(body: &Bytes) -> WebhookRequest {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        // Well-formed, so that the body is read; wrong, so that it is refused.
        headers.insert(
            "x-hub-signature-256",
            HeaderValue::from_str(&format!("sha256={}", "ab".repeat(32))).unwrap(),
        );
        WebhookRequest {
            method: Method::POST,
            query: None,
            headers,
            body: body.clone(),
        }
    }

    /// One request, its allocations measured on this thread (`block_on`
    /// polls the handler here; the runtime's workers only carry its AWS
    /// connections).
    fn once(&self, body: &Bytes) -> Cost {
        let req = Self::request(body);
        ALLOCS.with(|a| a.set(0));
        LIVE.with(|l| l.set(0));
        PEAK.with(|p| p.set(0));
        ON.with(|on| on.set(true));
        let status = self.rt.block_on(handle(&self.world.stack.app, req)).status;
        ON.with(|on| on.set(false));
        Cost {
            status,
            allocs: ALLOCS.with(Cell::get),
            peak: PEAK.with(Cell::get),
            cpu: Duration::ZERO,
        }
    }

    /// CPU time per request: requests are repeated until the thread has
    /// spent [`CPU_WINDOW`] on them, because the kernel may account a
    /// thread's time in scheduler ticks (4 ms here).
    fn cpu_per_request(&self, body: &Bytes) -> Duration {
        let cpu0 = thread_cpu();
        let mut n = 0u32;
        loop {
            let req = Self::request(body);
            std::hint::black_box(self.rt.block_on(handle(&self.world.stack.app, req)));
            n += 1;
            let spent = thread_cpu().saturating_sub(cpu0);
            if spent >= CPU_WINDOW || n >= 100_000 {
                return spent / n;
            }
        }
    }

    /// The body's cost with warm caches (tenant, secret, negative lookups):
    /// one request first; allocations and peak of the next; the least CPU
    /// of two windows (CPU time only shrinks with less interference).
    fn cost(&self, body: &[u8]) -> Cost {
        let body = Bytes::copy_from_slice(body);
        let _ = self.once(&body);
        let mut cost = self.once(&body);
        cost.cpu = self.cpu_per_request(&body).min(self.cpu_per_request(&body));
        cost
    }
}

/// How much CPU time one measurement spends, so that tick accounting errs
/// by a few percent at most.
const CPU_WINDOW: Duration = Duration::from_millis(120);

// ---------------------------------------------------------------------------
// Bodies.
// ---------------------------------------------------------------------------

/// The most memory a request may hold per byte of body, beyond what a
/// normal body costs.
const PEAK_PER_BODY_BYTE: i64 = 2;

const MIB: usize = 1024 * 1024;

/// How much larger the second body of a pair is. Four times, so that a
/// linear reader costs about 4× and a quadratic one 16×: the CPU check
/// ([`CPU_SLACK`]) can then allow for a shared machine's noise and still
/// tell them apart. (The largest body stays under the 3 MiB cap.)
const GROWTH: u64 = 4;

/// The CPU time allowed over linear growth: 2× linear is 8×, half of what
/// a quadratic reader would cost.
const CPU_SLACK: u32 = 2;

/// `before`, then `item` (given its index) joined by `sep` until the body
/// is about `size` bytes, then `after`.
fn fill(
    before: &str,
    sep: &str,
    after: &str,
    size: usize,
    item: impl Fn(usize) -> String,
) -> Vec<u8> {
    let mut body = String::with_capacity(size + 64);
    body.push_str(before);
    let mut i = 0;
    while body.len() + after.len() < size {
        if i > 0 {
            body.push_str(sep);
        }
        body.push_str(&item(i));
        i += 1;
    }
    body.push_str(after);
    body.into_bytes()
}

struct Ids {
    waba: String,
    pnid: String,
}

/// A change of the tenant's `messages` field, opened up to its `key` list.
fn messages_change(ids: &Ids, key: &str) -> String {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"{}","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"{}"}},"{key}":["#,
        ids.waba, ids.pnid
    )
}

const CLOSE_CHANGE: &str = "]}}]}]}";

/// A body of one shape at about the given size.
type Shape<'i> = Box<dyn Fn(usize) -> Vec<u8> + 'i>;

/// The hostile shapes: a name, the status the handler must answer, and the
/// body at about a given size.
fn hostile(ids: &Ids) -> Vec<(&'static str, u16, Shape<'_>)> {
    let env = r#"{"object":"whatsapp_business_account","entry":["#;
    let tenant_entry = format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"{}","changes":[]}}],"x":["#,
        ids.waba
    );
    vec![
        // The issue's CPU shape: distinct entries (over the cap).
        (
            "entries with distinct ids",
            400,
            Box::new(move |n| {
                fill(env, ",", "]}", n, |i| {
                    format!(r#"{{"id":"{}","changes":[]}}"#, 10_000_000_000_000 + i)
                })
            }),
        ),
        // The issue's memory shape: tiny objects as entries.
        (
            "tiny objects as entries",
            400,
            Box::new(move |n| fill(env, ",", "]}", n, |_| r#"{"a":1}"#.into())),
        ),
        // Tiny objects where nothing reads them: the whole body is scanned.
        ("tiny objects under a key nobody reads", 401, {
            let before = tenant_entry.clone();
            Box::new(move |n| fill(&before, ",", "]}", n, |_| r#"{"a":1}"#.into()))
        }),
        // Nesting to just under serde_json's limit, again and again.
        ("nesting 120 deep, repeated", 401, {
            let before = tenant_entry.clone();
            let nest = format!("{}{}", "[".repeat(120), "]".repeat(120));
            Box::new(move |n| fill(&before, ",", "]}", n, |_| nest.clone()))
        }),
        // One id of a megabyte: not a WABA id, so it names no tenant.
        (
            "an entry id of the whole body",
            401,
            Box::new(move |n| {
                fill(
                    r#"{"object":"whatsapp_business_account","entry":[{"id":""#,
                    "",
                    r#"","changes":[]}]}"#,
                    n,
                    |_| "9".into(),
                )
            }),
        ),
        // A kept text made of escapes: decoded once.
        ("one message text of escapes", 401, {
            let before = format!(
                r#"{}{{"from":"15550001111","id":"wamid.x","timestamp":"1","type":"text","text":{{"body":""#,
                messages_change(ids, "messages")
            );
            Box::new(move |n| {
                fill(&before, "", &format!(r#""}}}}{CLOSE_CHANGE}"#), n, |_| {
                    r"\u00e9".into()
                })
            })
        }),
        // A status with a key for every few bytes, and with escaped keys.
        ("a status with countless keys", 401, {
            let before = format!(
                r#"{}{{"id":"s","status":"sent","timestamp":"1","recipient_id":"1","#,
                messages_change(ids, "statuses")
            );
            Box::new(move |n| {
                fill(&before, ",", &format!("}}{CLOSE_CHANGE}"), n, |i| {
                    format!(r#""k{i}":0"#)
                })
            })
        }),
        ("a status with countless escaped keys", 401, {
            let before = format!(
                r#"{}{{"id":"s","status":"sent","timestamp":"1","recipient_id":"1","#,
                messages_change(ids, "statuses")
            );
            Box::new(move |n| {
                fill(&before, ",", &format!("}}{CLOSE_CHANGE}"), n, |i| {
                    format!(r#""\u006b{i}":0"#)
                })
            })
        }),
        // The same list key again and again (only the last would be kept).
        ("a statuses key repeated", 400, {
            let before = format!(
                r#"{{"object":"whatsapp_business_account","entry":[{{"id":"{}","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"{}"}},"#,
                ids.waba, ids.pnid
            );
            Box::new(move |n| {
                fill(&before, ",", "}}]}]}", n, |_| {
                    r#""statuses":[{"id":"s","status":"sent","timestamp":"1","recipient_id":"1"}]"#
                        .into()
                })
            })
        }),
    ]
}

/// A change with `n` messages, each with its own contact (the list Meta
/// batches at most).
fn messages_and_contacts(ids: &Ids, n: usize) -> Vec<u8> {
    let contacts: Vec<String> = (0..n)
        .map(|i| {
            format!(r#"{{"profile":{{"name":"CSM {i}"}},"wa_id":"1555{i:07}","user_id":"US.{i}"}}"#)
        })
        .collect();
    let messages: Vec<String> = (0..n)
        .rev()
        .map(|i| format!(r#"{{"from":"1555{i:07}","id":"wamid.{i}","timestamp":"1764075000","type":"text","text":{{"body":"on it"}}}}"#))
        .collect();
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"{}","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"{}"}},"contacts":[{}],"messages":[{}]}}}}]}}]}}"#,
        ids.waba,
        ids.pnid,
        contacts.join(","),
        messages.join(",")
    )
    .into_bytes()
}

/// `n` entries with distinct, valid WABA ids (under the cap).
fn distinct_entries(n: usize) -> Vec<u8> {
    let e: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"id":"{}","changes":[]}}"#, 10_000_000_000_000 + i))
        .collect();
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{}]}}"#,
        e.join(",")
    )
    .into_bytes()
}

/// A normal body: one inbound text message, as Meta sends it.
fn normal(ids: &Ids) -> Vec<u8> {
    messages_and_contacts(ids, 1)
}

fn kib(b: i64) -> String {
    format!("{:.0} KiB", b as f64 / 1024.0)
}

#[test]
fn unauthenticated_work_is_bounded_in_time_and_memory() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let world = rt.block_on(spawn_world());
    let ids = Ids {
        waba: world.tenant.waba_id.clone(),
        pnid: world.tenant.phone_number_id.clone(),
    };
    let bench = Bench { rt, world };
    let before = bench.rt.block_on(bench.world.item_count());

    let base = bench.cost(&normal(&ids));
    assert_eq!(base.status, 401);
    eprintln!(
        "normal body ({} bytes): {} allocations, peak {}, cpu {:?}",
        normal(&ids).len(),
        base.allocs,
        kib(base.peak),
        base.cpu
    );

    let mut failures = Vec::new();
    for (name, status, body) in hostile(&ids) {
        let (small, large) = (body(MIB / 2), body(GROWTH as usize * MIB / 2));
        let (s, l) = (bench.cost(&small), bench.cost(&large));
        eprintln!(
            "{name}: {} / {} bytes: status {} / {}, allocations {} / {}, peak {} / {}, cpu {:?} / {:?}",
            small.len(),
            large.len(),
            s.status,
            l.status,
            s.allocs,
            l.allocs,
            kib(s.peak),
            kib(l.peak),
            s.cpu,
            l.cpu
        );
        if (s.status, l.status) != (status, status) {
            failures.push(format!(
                "{name}: answered {} / {}, not {status}",
                s.status, l.status
            ));
        }
        for (bytes, c) in [(small.len(), s), (large.len(), l)] {
            if c.peak > PEAK_PER_BODY_BYTE * bytes as i64 + base.peak {
                failures.push(format!(
                    "{name}: peak {} for a {bytes}-byte body, over {PEAK_PER_BODY_BYTE} × its size",
                    kib(c.peak)
                ));
            }
        }
        if l.allocs > GROWTH * s.allocs + s.allocs / 5 + 2 * base.allocs {
            failures.push(format!(
                "{name}: allocations {} → {} for {GROWTH} times the body",
                s.allocs, l.allocs
            ));
        }
        if l.peak > GROWTH as i64 * s.peak + s.peak / 5 + 2 * base.peak {
            failures.push(format!(
                "{name}: peak {} → {} for {GROWTH} times the body",
                kib(s.peak),
                kib(l.peak)
            ));
        }
        if l.cpu > CPU_SLACK * (GROWTH as u32 * s.cpu + base.cpu) {
            failures.push(format!(
                "{name}: cpu {:?} → {:?} for {GROWTH} times the body",
                s.cpu, l.cpu
            ));
        }
    }

    // Four times the items under the caps: linear, not quadratic (distinct
    // ids kept in a set, contacts indexed once per change).
    for (name, half, full) in [
        (
            "distinct WABA ids",
            distinct_entries(250),
            distinct_entries(1000),
        ),
        (
            "messages and their contacts",
            messages_and_contacts(&ids, 250),
            messages_and_contacts(&ids, 1000),
        ),
    ] {
        let (h, f) = (bench.cost(&half), bench.cost(&full));
        eprintln!(
            "{name}: 250 / 1000: status {} / {}, allocations {} / {}, peak {} / {}, cpu {:?} / {:?}",
            h.status,
            f.status,
            h.allocs,
            f.allocs,
            kib(h.peak),
            kib(f.peak),
            h.cpu,
            f.cpu
        );
        if f.cpu > CPU_SLACK * (GROWTH as u32 * h.cpu + base.cpu) {
            failures.push(format!(
                "{name}: cpu {:?} → {:?} for {GROWTH} times the items",
                h.cpu, f.cpu
            ));
        }
        if f.allocs > GROWTH * h.allocs + h.allocs / 5 + 2 * base.allocs {
            failures.push(format!(
                "{name}: allocations {} → {} for {GROWTH} times the items",
                h.allocs, f.allocs
            ));
        }
        if f.peak > PEAK_PER_BODY_BYTE * 8 * full.len() as i64 + base.peak {
            failures.push(format!(
                "{name}: peak {} for {} bytes",
                kib(f.peak),
                full.len()
            ));
        }
    }

    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(
        bench.rt.block_on(bench.world.item_count()),
        before,
        "a refused body wrote"
    );
    let Bench { rt, world } = bench;
    rt.block_on(world.shutdown());
}
