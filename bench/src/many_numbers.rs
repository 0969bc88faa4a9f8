//! Many numbers (issue 21, goals 2 to 4): ten tenants, each its own phone
//! number capped at 80 messages per second, on one send queue and a fixed
//! fleet of sender instances ([`crate::fleet`]). The stack's send rate, the
//! sandbox's peak per rolling second for each number (never above its cap,
//! whatever the number of instances: every send takes a slot of its
//! number's shared schedule, `fincelo::store::rate`), and the AWS budget.
//!
//! The binding ceiling is the lower of the sum of the caps and what the
//! emulator can carry for the sender, measured in the same run: moto's own
//! CPU time over this run's messages ([`crate::moto_cpu`]) when its process
//! can be read, else the calibrated rates of [`crate::emulator`] priced at
//! this run's mix of requests. The report names which binds, and how it
//! was measured.
//!
//! Each tenant enqueues its alerts in SendMessageBatch calls of ten, the
//! tenants taking turns, as ten producers would; moto hands them out about
//! in that order, so most batches hold one tenant's records and claim once
//! for their number.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::fleet::Fleet;
use crate::noisy::Budget;
use crate::sender_run::{send_batch, send_request_for};
use crate::world::{many_tenant, phone_number_id_of, World, MANY_TENANTS};

#[derive(Debug, Clone, serde::Serialize)]
pub struct ManyNumbers {
    pub tenants: usize,
    pub cap_per_number: u32,
    pub messages: usize,
    pub processed: usize,
    pub seconds: f64,
    pub msgs_per_s: f64,
    /// The sandbox's highest count of accepted sends in any rolling second,
    /// per phone number id.
    pub max_peak_per_number: BTreeMap<String, u64>,
    /// The sandbox's accepted sends per phone number id.
    pub accepted_per_number: BTreeMap<String, u64>,
    pub budget: Budget,
    /// moto's CPU time while the fleet handled the run's alerts, when its
    /// process can be read.
    pub moto: Option<crate::moto_cpu::Spent>,
}

/// The cap each of the ten numbers keeps (Meta's default).
pub const CAP_PER_NUMBER: u32 = 80;

fn boxed(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// `messages` alerts spread evenly over the ten tenants, `instances` senders.
pub async fn run(world: &World, instances: u32, messages: usize) -> Result<ManyNumbers, String> {
    let sqs = aws_sdk_sqs::Client::new(&world.sdk);
    let queue = world.resources.queue("SendQueue").to_string();
    let run_id = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let per_tenant = messages / MANY_TENANTS;
    let tenants: Vec<String> = (1..=MANY_TENANTS).map(many_tenant).collect();
    for round in 0..per_tenant.div_ceil(10) {
        for t in &tenants {
            let from = round * 10;
            let bodies = (from..(from + 10).min(per_tenant))
                .map(|i| send_request_for(t, &format!("many-{run_id}-{t}-{i}")));
            send_batch(&sqs, &queue, bodies).await?;
        }
    }
    let total = per_tenant * MANY_TENANTS;
    let fleet = Fleet::start(world, instances, None).await?;
    // From about when the fleet's clock starts, as the throughput is.
    let moto = world.moto_cpu.and_then(|m| m.start());
    // The sum of the caps would take total / 800 s; allow far more.
    let limit = Duration::from_secs_f64(60.0 + total as f64 / 20.0);
    let seconds = fleet
        .wait_until(limit, |f| f.processed() >= total)
        .await
        .as_secs_f64();
    let moto = moto.and_then(|m| m.end());
    let totals = fleet.stop().await;

    let stats = world.meta.stats().await.map_err(boxed)?;
    let mut max_peak_per_number = BTreeMap::new();
    let mut accepted_per_number = BTreeMap::new();
    for t in &tenants {
        let pnid = phone_number_id_of(t);
        let ps = stats
            .per_phone_number
            .get(&pnid)
            .cloned()
            .unwrap_or_default();
        max_peak_per_number.insert(pnid.clone(), ps.max_per_rolling_second);
        accepted_per_number.insert(pnid, ps.accepted);
    }
    Ok(ManyNumbers {
        tenants: MANY_TENANTS,
        cap_per_number: CAP_PER_NUMBER,
        messages: total,
        processed: totals.processed,
        seconds,
        msgs_per_s: totals.processed.min(total) as f64 / seconds.max(1e-9),
        max_peak_per_number,
        accepted_per_number,
        budget: Budget::of(&totals),
        moto,
    })
}
