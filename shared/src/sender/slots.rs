//! A batch's send slots: every Graph send takes one of its number's slots
//! from the limiter all instances share ([`crate::store::rate`]), so no
//! number goes over its cap however many instances run.
//!
//! The limiter costs one conditional write per claim, so a batch claims
//! once per number for all of that number's records: the first record of a
//! number to reach Meta claims as many slots as the batch still has records
//! of that tenant, and the others take theirs from what it got. A record
//! that ends without a send (a duplicate, a parked alert) leaves its slot
//! unused: at 80/s, a whole batch's worth is 127 ms of the number's time. A
//! record that sends twice (a 131047 hand-back to the template) takes one
//! more, which a later record then claims anew.
//!
//! A claim that finds the number's next second booked waits for a slot to
//! free up and claims again: a flooded number keeps its own records
//! waiting, never another number's, because each number has its own book.
//!
//! Each instance remembers, per number, how its last claim saw the
//! schedule ([`ClaimMemory`]), and the next claim starts with the write
//! that memory points to ([`crate::store::rate`]): the restart for a number
//! that was idle (a few batches a second are idle between them), the extend
//! for one that was busy. A claim whose guess is right costs one write; one
//! whose number changed from idle to busy, or back, since, costs two.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::debug;

use crate::clock::Clock;
use crate::ids::TenantId;
use crate::store::{Claim, Claimed, Hint, NumberRate, Store, StoreError, TenantRecord};

/// How long one send may wait for a slot before it gives up and the
/// record is retried: a number booked this far ahead is flooded, and the
/// invocation is better spent on other records.
const MAX_SLOT_WAIT: Duration = Duration::from_secs(20);

/// What an instance remembers of its claims from one batch to the next.
#[derive(Debug, Default)]
pub(super) struct ClaimMemory {
    /// How long the last claim write took, in ms: claims book from that far
    /// ahead, so their first slots are not late on arrival.
    lead_ms: AtomicI64,
    /// Each number's schedule as this instance's last claim saw it: the
    /// next claim's first guess. One entry per number the instance has
    /// sent for.
    seen: Mutex<HashMap<String, Hint>>,
}

impl ClaimMemory {
    fn hint(&self, phone: &str) -> Option<Hint> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(phone).copied()
    }

    fn remember(&self, phone: &str, claimed: &Claimed) {
        if let Some(hint) = claimed.hint {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            seen.insert(phone.to_string(), hint);
        }
    }
}

/// The slots one batch (or one chunk of a release pass) claims and hands out.
pub(super) struct SendSlots {
    /// Per tenant, the batch's records with no slot in hand: what the next
    /// claim asks for. A record that ends without a send never takes one,
    /// so a claim may ask for more than are used (see the module's doc).
    unserved: Mutex<HashMap<TenantId, u32>>,
    /// Slots claimed and not yet taken, per phone number id, oldest first
    /// (unix microseconds on the injectable clock).
    books: Mutex<HashMap<String, Arc<tokio::sync::Mutex<VecDeque<i64>>>>>,
    /// The instance's memory of its claims.
    memory: Arc<ClaimMemory>,
}

impl SendSlots {
    /// The book of a batch whose records belong to `tenants` (one entry
    /// per record).
    pub(super) fn for_records<'t>(
        tenants: impl IntoIterator<Item = &'t TenantId>,
        memory: Arc<ClaimMemory>,
    ) -> SendSlots {
        let mut unserved: HashMap<TenantId, u32> = HashMap::new();
        for t in tenants {
            *unserved.entry(t.clone()).or_default() += 1;
        }
        SendSlots {
            unserved: Mutex::new(unserved),
            books: Mutex::default(),
            memory,
        }
    }

    /// Waits for the tenant's number's next slot and takes it; claims
    /// slots for the rest of the batch's records of the tenant when none is
    /// left. A store error or a number booked beyond [`MAX_SLOT_WAIT`]
    /// fails this send only (the caller retries the record).
    ///
    /// A slot is a time, not a ticket: a send that leaves well after its
    /// slot could fall in the same rolling second as later slots. So a slot
    /// already past when it is handed out (a slow claim write makes its
    /// first slots late at once), or past when the send wakes up for it (a
    /// busy instance woke it late), is dropped unused, which is always
    /// safe, and the send takes the next one.
    pub(super) async fn take(
        &self,
        store: &Store,
        clock: &Clock,
        tenant: &TenantRecord,
        rate: NumberRate,
    ) -> Result<(), SlotError> {
        for _ in 0..MAX_CLAIMS {
            let slot_us = self.next_slot(store, clock, tenant, rate).await?;
            let wait_us = slot_us.saturating_sub(clock.now_ms().saturating_mul(1000));
            if wait_us > 0 {
                tokio::time::sleep(Duration::from_micros(wait_us.unsigned_abs())).await;
            }
            if !late(slot_us, clock) {
                return Ok(());
            }
            debug!("woke too late for the send slot; taking the next one");
            // Without a slot again: a claim counts this record once more.
            self.served(&tenant.tenant_id, -1);
        }
        Err(SlotError::Late)
    }

    /// Counts a slot handed to one of the tenant's records (`+1`), or given
    /// back unused (`-1`); answers how many of its records still have none.
    fn served(&self, tenant: &TenantId, by: i32) -> u32 {
        let mut unserved = self.unserved.lock().unwrap_or_else(|p| p.into_inner());
        let n = unserved.entry(tenant.clone()).or_default();
        *n = n.saturating_add_signed(-by);
        *n
    }

    fn unserved(&self, tenant: &TenantId) -> u32 {
        self.served(tenant, 0)
    }

    /// The number's next slot not already past: from what the batch holds,
    /// else from a new claim of a slot for each of the tenant's records
    /// without one (waiting while the number's next second is booked).
    async fn next_slot(
        &self,
        store: &Store,
        clock: &Clock,
        tenant: &TenantRecord,
        rate: NumberRate,
    ) -> Result<i64, SlotError> {
        let phone = tenant.phone_number_id.as_str();
        let book = self
            .books
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(phone.to_string())
            .or_default()
            .clone();
        // One claim at a time per number within the batch: the records that
        // wait here take from what the first one claimed.
        let mut free = book.lock().await;
        let mut rounds = 0;
        loop {
            if let Some(slot) = free.pop_front() {
                if !late(slot, clock) {
                    self.served(&tenant.tenant_id, 1);
                    return Ok(slot);
                }
                continue;
            }
            rounds += 1;
            if rounds > MAX_CLAIMS {
                return Err(SlotError::Late);
            }
            // This record and the tenant's others still without a slot.
            let want = self.unserved(&tenant.tenant_id).max(1);
            let slots = self.claim(store, clock, phone, rate, want).await?;
            free.extend(slots);
        }
    }

    /// One claim of `want` slots, waiting while the number's next second is
    /// booked; the slots' times, in unix microseconds.
    async fn claim(
        &self,
        store: &Store,
        clock: &Clock,
        phone: &str,
        rate: NumberRate,
        want: u32,
    ) -> Result<Vec<i64>, SlotError> {
        let mut waited = Duration::ZERO;
        loop {
            let started = clock.now_ms();
            // Claims book ahead by half again the instance's last write
            // round trip (write times vary), so their first slots are not
            // late on arrival.
            let last = self.memory.lead_ms.load(Ordering::Relaxed);
            let hint = self.memory.hint(phone);
            let claimed = store
                .claim_send_slots(phone, rate, want, started + last * 3 / 2, hint)
                .await?;
            let took = (clock.now_ms() - started).clamp(0, 1_000);
            // Remembered high, forgotten slowly.
            self.memory
                .lead_ms
                .store(took.max(last * 3 / 4), Ordering::Relaxed);
            self.memory.remember(phone, &claimed);
            match claimed.claim {
                Claim::Slots(slots) => return Ok(slots.times_us().collect()),
                Claim::Full(wait) => {
                    if waited >= MAX_SLOT_WAIT {
                        return Err(SlotError::Booked(waited));
                    }
                    debug!(
                        wait_ms = wait.as_millis() as u64,
                        "the number's next second is booked; waiting for a slot"
                    );
                    tokio::time::sleep(wait).await;
                    waited += wait;
                }
            }
        }
    }
}

/// Whether a send leaving now is too late for the slot at `slot_us`.
fn late(slot_us: i64, clock: &Clock) -> bool {
    slot_us < clock.now_ms().saturating_mul(1000) - LATE_US
}

/// How late a send may leave after its slot: the rest of the cap's 10 %
/// slack ([`crate::store::rate`]) is for the way to Meta.
const LATE_US: i64 = 20_000;

/// Claims one send may make, and slots it may wake up for, while its slots
/// keep coming back (or it keeps waking) too late.
const MAX_CLAIMS: usize = 5;

/// Why a send got no slot.
#[derive(Debug, thiserror::Error)]
pub(super) enum SlotError {
    #[error("the number's send rate could not be read: {0}")]
    Store(#[from] StoreError),
    #[error("the number's sends are booked {} s ahead", .0.as_secs())]
    Booked(Duration),
    #[error("the number's slots kept coming back too late to use")]
    Late,
}
