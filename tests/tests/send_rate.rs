//! The per-number rate limiter that every sender instance shares
//! (`fincelo::store::rate`), against the emulator: eight instances, each
//! with its own SDK client, claim one number's slots at once, each
//! guessing its first write from the schedule as it last saw it, as the
//! sender's instances do.

use std::time::Duration;

use fincelo::store::{Claim, Claimed, Hint, NumberRate, Retention, Store};

use crate::helpers::*;

/// Claims `total` slots for `number` from `instances` concurrent claimers,
/// each with its own client, in batches of `batch`; every slot time, sorted.
async fn claim_concurrently(
    world: &World,
    number: &str,
    rate: NumberRate,
    instances: usize,
    per_instance: u32,
    batch: u32,
) -> Vec<i64> {
    let endpoint = moto_endpoint().await;
    let table = world.stack.app.store.table_name().to_string();
    let mut tasks = Vec::new();
    for _ in 0..instances {
        let config = fincelo_local::emulator::sdk_config(&endpoint)
            .await
            .expect("sdk config");
        let store = Store::new(
            aws_sdk_dynamodb::Client::new(&config),
            table.clone(),
            Retention::default(),
        );
        let clock = world.stack.app.clock.clone();
        let number = number.to_string();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            let mut hint = None;
            while (mine.len() as u32) < per_instance {
                let want = batch.min(per_instance - mine.len() as u32);
                let claimed = claim_seen(&store, &number, rate, want, clock.now_ms(), hint).await;
                hint = claimed.hint;
                match claimed.claim {
                    Claim::Slots(slots) => {
                        assert!(slots.count >= 1 && slots.count <= want, "{slots:?}");
                        mine.extend(slots.times_us());
                    }
                    Claim::Full(wait) => tokio::time::sleep(wait).await,
                }
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("claimer"));
    }
    all.sort_unstable();
    all
}

/// The most slot times in any rolling second (a half-open [t, t + 1 s)).
fn peak_per_rolling_second(sorted_us: &[i64]) -> usize {
    let mut peak = 0;
    let mut j = 0;
    for i in 0..sorted_us.len() {
        while j < sorted_us.len() && sorted_us[j] < sorted_us[i] + 1_000_000 {
            j += 1;
        }
        peak = peak.max(j - i);
    }
    peak
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_instances_never_put_a_number_over_its_cap_in_any_second() {
    let world = spawn_world_without_sender().await;
    let rate = NumberRate { per_second: 80 };
    let number = format!("rate-{}", short_id());
    let slots = claim_concurrently(&world, &number, rate, 8, 40, 10).await;

    assert_eq!(slots.len(), 320);
    // No slot is handed out twice, and all are a spacing apart.
    for pair in slots.windows(2) {
        assert!(
            pair[1] - pair[0] >= rate.spacing_us(),
            "slots {} and {} are closer than {} µs",
            pair[0],
            pair[1],
            rate.spacing_us()
        );
    }
    let peak = peak_per_rolling_second(&slots);
    assert!(peak <= 80, "{peak} slots in one rolling second");
    // ...and the cap is used: 320 slots at 80/s take about 4.4 s (1.1 s
    // per 80). The bound is loose because a loaded machine can pause the
    // emulator; a schedule that restarted or left gaps would miss it.
    let span_us = slots[slots.len() - 1] - slots[0];
    assert!(
        span_us <= 319 * rate.spacing_us() * 3 / 2,
        "320 slots spread over {span_us} µs: the schedule has gaps"
    );
    world.shutdown().await;
}

/// One claim of `want` slots at `now_ms`, from what `hint` says of the
/// schedule.
async fn claim_seen(
    store: &Store,
    number: &str,
    rate: NumberRate,
    want: u32,
    now_ms: i64,
    hint: Option<Hint>,
) -> Claimed {
    store
        .claim_send_slots(number, rate, want, now_ms, hint)
        .await
        .expect("claim")
}

/// One claim with no hint, as a first claim of an instance makes.
async fn claim(store: &Store, number: &str, rate: NumberRate, want: u32, now_ms: i64) -> Claim {
    claim_seen(store, number, rate, want, now_ms, None)
        .await
        .claim
}

#[tokio::test]
async fn each_number_has_its_own_schedule_and_an_idle_one_starts_now() {
    let world = spawn_world_without_sender().await;
    let store = &world.stack.app.store;
    let rate = NumberRate { per_second: 1000 };
    let now = world.stack.app.clock.now_ms();
    let a = format!("rate-a-{}", short_id());
    let b = format!("rate-b-{}", short_id());

    let Claim::Slots(first) = claim(store, &a, rate, 10, now).await else {
        panic!("an idle number has room")
    };
    assert_eq!(first.first_us, now * 1000, "an idle number starts now");
    assert_eq!(first.count, 10);
    let Claim::Slots(next) = claim(store, &a, rate, 10, now).await else {
        panic!("room left")
    };
    assert_eq!(next.first_us, first.at_us(10), "the next claim follows on");
    let Claim::Slots(other) = claim(store, &b, rate, 10, now).await else {
        panic!("another number is free")
    };
    assert_eq!(other.first_us, now * 1000, "another number is not behind a");

    // A number booked a whole second ahead answers Full, and takes nothing.
    let slow = NumberRate { per_second: 5 };
    let c = format!("rate-c-{}", short_id());
    let Claim::Slots(all) = claim(store, &c, slow, 50, now).await else {
        panic!("idle")
    };
    assert_eq!(all.count, 4, "1 s holds four slots of 204 ms");
    match claim(store, &c, slow, 1, now).await {
        Claim::Full(wait) => assert!(wait <= Duration::from_millis(204), "{wait:?}"),
        other => panic!("expected Full, got {other:?}"),
    }
    // Once the schedule lies in the past, the number restarts from now.
    let later = now + 5_000;
    let Claim::Slots(again) = claim(store, &c, slow, 1, later).await else {
        panic!("idle again")
    };
    assert_eq!(again.first_us, later * 1000);
    world.shutdown().await;
}

#[tokio::test]
async fn a_claim_starts_with_the_write_its_last_sight_of_the_schedule_points_to() {
    let world = spawn_world_without_sender().await;
    let store = &world.stack.app.store;
    let rate = NumberRate { per_second: 80 };
    let now = world.stack.app.clock.now_ms();
    let number = format!("rate-hint-{}", short_id());
    let claim =
        |want: u32, at: i64, hint: Option<Hint>| claim_seen(store, &number, rate, want, at, hint);

    // Nothing known of an idle number: the extend is refused, then the
    // restart applies; it was idle.
    let first = claim(10, now, None).await;
    assert_eq!(first.writes, 2, "{first:?}");
    let seen = first.hint.expect("the claim saw its own end");
    assert_eq!(seen.end_us, now * 1000 + 10 * rate.spacing_us());
    assert!(!seen.busy, "{first:?}");

    // Two seconds on, it was idle and its end is past: the claim restarts
    // the number in one write.
    let later = now + 2_000;
    let idle = claim(10, later, Some(seen)).await;
    assert_eq!(idle.writes, 1, "{idle:?}");
    let Claim::Slots(slots) = idle.claim else {
        panic!("an idle number has room: {idle:?}")
    };
    assert_eq!(slots.first_us, later * 1000, "an idle number starts now");

    // Busy now, and this memory is stale (another instance booked since):
    // the wrong guess costs one refused write, never a wrong slot.
    let stale = claim(5, later, Some(seen)).await;
    assert_eq!(stale.writes, 2, "{stale:?}");
    let Claim::Slots(after) = stale.claim else {
        panic!("room left: {stale:?}")
    };
    assert_eq!(
        after.first_us,
        slots.at_us(10),
        "it follows the booked slots"
    );
    let busy = stale.hint.expect("seen");
    assert!(busy.busy, "{stale:?}");

    // Seen busy: the extend applies at once, and keeps doing so even when
    // this caller's own last slots are past, as on a number other
    // instances keep busy.
    let known = claim(5, later, Some(busy)).await;
    assert_eq!(known.writes, 1, "{known:?}");
    let past = Hint {
        end_us: later * 1000 - 1,
        busy: true,
    };
    let shared = claim(5, later, Some(past)).await;
    assert_eq!(shared.writes, 1, "{shared:?}");
    world.shutdown().await;
}
