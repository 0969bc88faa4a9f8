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

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::debug;

use crate::clock::Clock;
use crate::ids::TenantId;
use crate::store::{Claim, NumberRate, Store, StoreError, TenantRecord};

/// How long one send may wait for a slot before it gives up and the
/// record is retried: a number booked this far ahead is flooded, and the
/// invocation is better spent on other records.
const MAX_SLOT_WAIT: Duration = Duration::from_secs(20);

/// The slots one batch (or one chunk of a release pass) claims and hands out.
pub(super) struct SendSlots {
    /// Records per tenant that may still send; what the next claim asks for.
    remaining: Mutex<HashMap<TenantId, u32>>,
    /// Slots claimed and not yet taken, per phone number id, oldest first
    /// (unix microseconds on the injectable clock).
    books: Mutex<HashMap<String, Arc<tokio::sync::Mutex<VecDeque<i64>>>>>,
    /// How long the instance's last claim write took, in ms: claims book
    /// from that far ahead, so their first slots are not late on arrival.
    lead_ms: Arc<AtomicI64>,
}

impl SendSlots {
    /// The book of a batch whose records belong to `tenants` (one entry
    /// per record).
    pub(super) fn for_records<'t>(
        tenants: impl IntoIterator<Item = &'t TenantId>,
        lead_ms: Arc<AtomicI64>,
    ) -> SendSlots {
        let mut remaining: HashMap<TenantId, u32> = HashMap::new();
        for t in tenants {
            *remaining.entry(t.clone()).or_default() += 1;
        }
        SendSlots {
            remaining: Mutex::new(remaining),
            books: Mutex::default(),
            lead_ms,
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
        let phone = tenant.phone_number_id.as_str();
        let want = {
            let mut remaining = self.remaining.lock().unwrap_or_else(|p| p.into_inner());
            let left = remaining.entry(tenant.tenant_id.clone()).or_default();
            let want = (*left).max(1);
            *left = left.saturating_sub(1);
            want
        };
        for _ in 0..MAX_CLAIMS {
            let slot_us = self.next_slot(store, clock, phone, rate, want).await?;
            let wait_us = slot_us.saturating_sub(clock.now_ms().saturating_mul(1000));
            if wait_us > 0 {
                tokio::time::sleep(Duration::from_micros(wait_us.unsigned_abs())).await;
            }
            if !late(slot_us, clock) {
                return Ok(());
            }
            debug!("woke too late for the send slot; taking the next one");
        }
        Err(SlotError::Late)
    }

    /// The number's next slot not already past: from what the batch holds,
    /// else from a new claim of `want` slots (waiting while the number's
    /// next second is booked).
    async fn next_slot(
        &self,
        store: &Store,
        clock: &Clock,
        phone: &str,
        rate: NumberRate,
        want: u32,
    ) -> Result<i64, SlotError> {
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
                    return Ok(slot);
                }
                continue;
            }
            rounds += 1;
            if rounds > MAX_CLAIMS {
                return Err(SlotError::Late);
            }
            let mut waited = Duration::ZERO;
            loop {
                let started = clock.now_ms();
                // Claims book ahead by half again the instance's last write
                // round trip (write times vary), so their first slots are
                // not late on arrival.
                let last = self.lead_ms.load(Ordering::Relaxed);
                let claim = store
                    .claim_send_slots(phone, rate, want, started + last * 3 / 2)
                    .await?;
                let took = (clock.now_ms() - started).clamp(0, 1_000);
                // Remembered high, forgotten slowly.
                self.lead_ms
                    .store(took.max(last * 3 / 4), Ordering::Relaxed);
                match claim {
                    Claim::Slots(slots) => {
                        free.extend(slots.times_us());
                        break;
                    }
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
