//! The operator's day one to day three (`make journey`), in `make test`:
//! the same journey, through the `fwa` binary this package builds, against
//! a local stack of its own on moto at `FWA_TEST_MOTO`.

use fincelo_local::journey::{run, JourneyOptions, STEPS};

/// Every step passes, and the timeline ends with exactly the summary line.
#[tokio::test]
async fn the_operator_journey_passes_every_step() {
    let moto = std::env::var("FWA_TEST_MOTO").unwrap_or_else(|_| "http://127.0.0.1:5056".into());
    let dir = std::env::temp_dir().join(format!(
        "fwa-journey-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    let opts = JourneyOptions {
        moto,
        fwa: env!("CARGO_BIN_EXE_fwa").into(),
        dir: dir.clone(),
    };
    let mut timeline = Vec::new();
    let report = run(&opts, &mut timeline).await;
    let text = String::from_utf8_lossy(&timeline).into_owned();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(report.all_passed(), "{text}");
    assert_eq!(report.total, STEPS.len());
    assert_eq!(
        text.lines().last(),
        Some(format!("journey: {n}/{n} steps passed", n = STEPS.len()).as_str()),
        "{text}"
    );
    // Every step printed its verdict, and the operator's commands with it.
    assert_eq!(text.matches("  PASSED: ").count(), STEPS.len(), "{text}");
    for command in [
        "$ fwa channel connect",
        "$ fwa submit-templates",
        "$ fwa clock advance 30h",
        "$ fwa reply",
        "$ fwa parked",
        "$ fwa redrive",
    ] {
        assert!(text.contains(command), "{command} missing:\n{text}");
    }
}
