//! The operator's day one to day three (issue 17), run against a local
//! stack of its own with a compressed clock, through `fwa` only: what
//! `make journey` prints, and what `infra/fwa/tests/journey.rs` runs in
//! `make test`.
//!
//! | step | the operator (through `fwa`) | Meta (the sandbox's control API) |
//! |---|---|---|
//! | 1 | connects a new tenant (`channel connect`, secrets from a file) | the tenant's Meta app exists, with no verified callback yet |
//! | 2 | | Verify and Save: a mistyped verify token is refused, the right one saved |
//! | 3 | submits the templates (`submit-templates`, `status`) | the review takes its time |
//! | 4 | adds two CSMs, enqueues three alerts (`csm add`, `enqueue`): all wait | |
//! | 5 | lets 30 hours pass (`clock advance 30h`) | approves five templates: the waiting alerts are sent |
//! | 6 | a CSM replies (`reply`), the window opens (`window`), a free-form alert follows | |
//! | 7 | lets 10 more hours pass; sees the alert parked with Meta's reason (`parked`) | rejects the sixth template |
//! | 8 | redrives the alert after the fix (`redrive`), is told clearly when the key is not parked any more | approves the edited template |
//!
//! Why this shape:
//! - **Through `fwa` only**, as a new operator runs it: every operator
//!   action and every check is an `fwa` command (the built binary, `--json`
//!   where the journey reads an answer), so the journey also proves that
//!   `fwa`, the state file ([`crate::dev_state`]) and the admin API agree.
//!   Upstream's alerts go through `fwa enqueue`, which writes the send
//!   queue as upstream does.
//! - **Meta's side is the sandbox's**: creating the app, pressing Verify
//!   and Save (the sandbox sends Meta's `GET` with `hub.challenge` and
//!   saves only if it comes back), deciding the templates. A real
//!   deployment does these in Meta's dashboard; `docs/operating.md` says
//!   which steps only a real deployment can show.
//! - **Compressed time**: `fwa clock advance` moves the stack's clock
//!   (`POST /_local/clock`), which the sandbox reads too
//!   ([`TimeControl::sandbox_clock`]), and the sweep fires, as the 5-minute
//!   schedule would have meanwhile. The sandbox's review is manual
//!   (`template_review: manual`), so each decision lands at the simulated
//!   hour the step names, one template at a time.
//! - **A readable timeline**: each step prints the simulated time, the
//!   commands and what `fwa` answered, and a verdict; the last line is
//!   exactly `journey: N/N steps passed`. A failed step stops the journey:
//!   the later ones depend on it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::dev_state::{dev_state, write_dev_state};
use crate::stack::{random_digits, Stack, StackOptions, TimeControl};

/// The steps, by title (the list).
pub const STEPS: [&str; 8] = [
    "connect a new tenant",
    "Meta's Verify and Save handshake",
    "submit the templates",
    "enqueue alerts while the templates are PENDING",
    "approval after simulated hour 30: the waiting alerts are sent",
    "a CSM replies, the window opens, a free-form alert follows",
    "a rejected template's alert is parked with its reason",
    "a parked alert is redriven after the fix, and sent",
];

/// How long a check waits for the stack (real time).
const PATIENCE: Duration = Duration::from_secs(40);

/// Longer than a sender instance trusts a template status that is not
/// APPROVED (5 s, real time).
const SENDER_STATUS_TRUST: Duration = Duration::from_secs(6);

/// How to run the journey.
#[derive(Debug, Clone)]
pub struct JourneyOptions {
    /// The moto server, e.g. `http://127.0.0.1:5064`.
    pub moto: String,
    /// The `fwa` binary to drive.
    pub fwa: PathBuf,
    /// Where the journey keeps its state file and the tenant's secrets file.
    pub dir: PathBuf,
}

/// How it went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub passed: usize,
    pub total: usize,
}

impl Report {
    /// The journey's last line, exactly.
    pub fn last_line(&self) -> String {
        format!("journey: {}/{} steps passed", self.passed, self.total)
    }

    pub fn all_passed(&self) -> bool {
        self.passed == self.total
    }
}

/// Runs the journey, printing its timeline to `out` (its last line is
/// [`Report::last_line`]). A stack that cannot start counts as no step
/// passed.
pub async fn run(opts: &JourneyOptions, out: &mut (dyn Write + Send)) -> Report {
    let out = Mutex::new(out);
    let say = |line: &str| {
        let mut w = out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(w, "{line}");
        let _ = w.flush();
    };
    let mut report = Report {
        passed: 0,
        total: STEPS.len(),
    };
    match World::start(opts).await {
        Err(e) => say(&format!("the local stack did not start: {e}")),
        Ok(world) => {
            let j = Journey {
                world: &world,
                fwa: opts.fwa.clone(),
                dir: opts.dir.clone(),
                out: &say,
                start: world.time.now(),
                real_start: Instant::now(),
                ids: Ids::fresh(),
            };
            say(&format!(
                "journey: day one to day three for a new tenant, {}, against a local stack\n  (moto {}, Meta sandbox {}, state file {})\n  the clock starts at {}; `fwa clock advance` moves it",
                j.ids.tenant,
                opts.moto,
                world.sandbox.base_url(),
                j.state_file().display(),
                fincelo::admin::when::iso8601(j.start),
            ));
            for (n, title) in STEPS.iter().enumerate() {
                say("");
                say(&format!(
                    "step {}/{} {}  {title}",
                    n + 1,
                    STEPS.len(),
                    j.when()
                ));
                let result = match n {
                    0 => j.connect().await,
                    1 => j.verify_and_save().await,
                    2 => j.submit_templates().await,
                    3 => j.enqueue_while_pending().await,
                    4 => j.approval_at_hour_30().await,
                    5 => j.reply_and_free_form().await,
                    6 => j.rejection_parks().await,
                    _ => j.redrive_after_fix().await,
                };
                match result {
                    Ok(verdict) => {
                        report.passed += 1;
                        say(&format!("  PASSED: {verdict}"));
                    }
                    Err(why) => {
                        say(&format!("  FAILED: {why}"));
                        say("  (the later steps depend on this one; the journey stops here)");
                        break;
                    }
                }
            }
            say("");
            say(&format!(
                "{} simulated hours in {:.0} s of real time",
                (world.time.now() - j.start) / 3600,
                j.real_start.elapsed().as_secs_f64()
            ));
            world.shutdown().await;
        }
    }
    say(&report.last_line());
    report
}

/// The stack and the sandbox the journey runs against.
struct World {
    stack: Stack,
    sandbox: meta_sandbox::SandboxHandle,
    time: TimeControl,
}

impl World {
    async fn start(opts: &JourneyOptions) -> Result<World, String> {
        std::fs::create_dir_all(&opts.dir).map_err(|e| format!("{}: {e}", opts.dir.display()))?;
        // One clock for the stack and Meta's side: `fwa clock advance` moves
        // both, so Meta's webhooks and its 24-hour window read the stack's time.
        let time = TimeControl::default();
        let mut config = meta_sandbox::SandboxConfig {
            clock: time.sandbox_clock(),
            ..Default::default()
        };
        // Meta decides each template when the journey says so (steps 5, 7
        // and 8), at the simulated hour the step names.
        config.knobs.template_review = meta_sandbox::TemplateReview::Manual;
        let sandbox = meta_sandbox::spawn("127.0.0.1:0".parse().expect("loopback"), config)
            .await
            .map_err(|e| format!("Meta sandbox: {e}"))?;
        let prefix = format!(
            "journey-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let mut so = StackOptions::new(&opts.moto, sandbox.base_url(), prefix);
        so.time = time.clone();
        // A record the sender could not finish comes back in seconds, not
        // template.yaml's 190 s: the journey runs in real minutes.
        so.overrides.send_queue_visibility_secs = Some(5);
        let stack = Stack::start(so)
            .await
            .map_err(|e| format!("{e} (is moto running at {}?)", opts.moto))?;
        let world = World {
            stack,
            sandbox,
            time,
        };
        let state = dev_state(&world.stack, &opts.moto, &world.sandbox.base_url(), None);
        write_dev_state(&opts.dir.join("state.json"), &state).map_err(|e| e.to_string())?;
        Ok(world)
    }

    async fn shutdown(self) {
        self.stack.shutdown().await;
        self.sandbox.shutdown().await;
    }
}

/// The new tenant, its Meta app, its CSMs and its alerts.
struct Ids {
    tenant: String,
    phone_number_id: String,
    waba_id: String,
    access_token: String,
    app_secret: String,
    verify_token: String,
    priya: String,
    arjun: String,
    /// usage (template fincelo_usage_opportunity), overdue invoice
    /// (fincelo_collections_urgent), escalation (fincelo_escalation_notify,
    /// the one Meta rejects), and the free-form alert of step 6.
    usage: String,
    invoice: String,
    escalation: String,
    free_form: String,
}

impl Ids {
    fn fresh() -> Ids {
        let id = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let hex = || uuid::Uuid::new_v4().simple().to_string();
        Ids {
            tenant: format!("acme-{id}"),
            phone_number_id: random_digits(15),
            waba_id: random_digits(15),
            access_token: format!("EAAG{}{}", hex(), hex()),
            // Meta issues 32 hex characters.
            app_secret: hex(),
            verify_token: hex()[..24].to_string(),
            priya: csm_number(),
            arjun: csm_number(),
            usage: format!("usage-{id}"),
            invoice: format!("invoice-{id}"),
            escalation: format!("escalation-{id}"),
            free_form: format!("reply-{id}"),
        }
    }
}

/// A valid Indian mobile number no other run shares.
fn csm_number() -> String {
    format!("+919876{}", &random_digits(12)[..6])
}

struct Journey<'a> {
    world: &'a World,
    fwa: PathBuf,
    dir: PathBuf,
    out: &'a (dyn Fn(&str) + Sync),
    /// The stack's clock when the journey began.
    start: i64,
    real_start: Instant,
    ids: Ids,
}

/// What a step returns: its verdict in words, or why it failed.
type Step = Result<String, String>;

impl Journey<'_> {
    fn say(&self, line: &str) {
        (self.out)(line)
    }

    fn state_file(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// The simulated time since the start, and the stack's clock.
    fn when(&self) -> String {
        let now = self.world.time.now();
        let since = (now - self.start).max(0);
        format!(
            "[hour {:02}:{:02}, {}]",
            since / 3600,
            (since % 3600) / 60,
            fincelo::admin::when::iso8601(now)
        )
    }

    /// Runs `fwa` for the journey's tenant.
    async fn fwa_raw(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<Output, String> {
        let mut cmd = tokio::process::Command::new(&self.fwa);
        cmd.arg("--state")
            .arg(self.state_file())
            .args(["--tenant", &self.ids.tenant])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| {
            format!(
                "{}: {e} (build it with `cargo build -p fwa`)",
                self.fwa.display()
            )
        })?;
        let mut pipe = child.stdin.take();
        if let (Some(input), Some(p)) = (stdin, pipe.as_mut()) {
            use tokio::io::AsyncWriteExt;
            p.write_all(input).await.map_err(|e| e.to_string())?;
        }
        drop(pipe);
        tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .map_err(|_| "fwa did not finish within 60 s".to_string())?
            .map_err(|e| e.to_string())
    }

    /// Runs `fwa` as the operator does: prints the command and its answer.
    /// A failure (exit status) is an error carrying fwa's message.
    async fn fwa(&self, args: &[&str]) -> Result<String, String> {
        let out = self.shown(args).await?;
        if !out.status.success() {
            return Err(format!(
                "`fwa {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs and prints `fwa`, whatever its exit status.
    async fn shown(&self, args: &[&str]) -> Result<Output, String> {
        self.say(&format!("  $ fwa {}", args.join(" ")));
        let out = self.fwa_raw(args, None).await?;
        for line in String::from_utf8_lossy(&out.stdout)
            .lines()
            .chain(String::from_utf8_lossy(&out.stderr).lines())
        {
            self.say(&format!("    {line}"));
        }
        Ok(out)
    }

    /// Runs `fwa --json` quietly: the journey reading an answer.
    async fn read(&self, args: &[&str]) -> Result<Value, String> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.fwa_raw(&all, None).await?;
        if !out.status.success() {
            return Err(format!(
                "`fwa {}` failed: {}",
                all.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("`fwa {}`: not JSON: {e}", all.join(" ")))
    }

    /// Reads with `fwa --json args` until `done` holds (or [`PATIENCE`] ends).
    async fn until(
        &self,
        args: &[&str],
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Result<Value, String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let last = self.read(args).await;
            if let Ok(v) = &last {
                if done(v) {
                    return Ok(v.clone());
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{what}: not within {} s; last `fwa {}`: {}",
                    PATIENCE.as_secs(),
                    args.join(" "),
                    match last {
                        Ok(v) => v.to_string(),
                        Err(e) => e,
                    }
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// An alert's timeline once its state is `state`.
    async fn alert_in(&self, key: &str, state: &str) -> Result<Value, String> {
        self.until(&["timeline", key], &format!("alert {key} {state}"), |v| {
            v["state"] == state
        })
        .await
    }

    /// Meta's side: a control call to the sandbox.
    async fn meta(&self, path: &str, body: Value) -> Result<Value, String> {
        let url = format!("{}{path}", self.world.sandbox.base_url());
        let resp = reqwest::Client::new()
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status();
        let v: Value = resp.json().await.map_err(|e| format!("{url}: {e}"))?;
        if !status.is_success() {
            return Err(format!("{url}: HTTP {status}: {v}"));
        }
        Ok(v)
    }

    /// Meta decides a template (English) and sends its status webhook.
    async fn meta_decides(&self, name: &str, status: &str, reason: Option<&str>) -> Step {
        let mut body = json!({
            "waba_id": self.ids.waba_id, "name": name, "language": "en",
            "status": status, "webhook": true,
        });
        if let Some(r) = reason {
            body["reason"] = json!(r);
        }
        let v = self.meta("/_sandbox/templates/decide", body).await?;
        let delivered = v["webhook"]
            .as_array()
            .is_some_and(|w| !w.is_empty() && w.iter().all(|d| d["delivered"] == true));
        if !delivered {
            return Err(format!(
                "Meta's webhook for {name} {status} was not delivered: {v}"
            ));
        }
        Ok(format!("{name} {status}"))
    }

    fn hours_since_start(&self, unix: i64) -> f64 {
        (unix - self.start) as f64 / 3600.0
    }

    async fn connect(&self) -> Step {
        let ids = &self.ids;
        self.say(&format!(
            "  Meta: the tenant's app exists (phone number id {}, WABA {}); no callback URL is verified yet",
            ids.phone_number_id, ids.waba_id
        ));
        self.meta(
            "/_sandbox/tenants",
            json!({
                "phone_number_id": ids.phone_number_id, "waba_id": ids.waba_id,
                "access_token": ids.access_token, "app_secret": ids.app_secret,
                // Nothing listens there: Meta has no verified callback yet.
                "webhook_url": "http://127.0.0.1:9/not-verified-yet",
                "display_phone_number": "+1 555 0100 123", "verified_name": "Acme Logistics",
            }),
        )
        .await?;
        let secrets = self.dir.join("acme-secrets.env");
        write_private(
            &secrets,
            &format!(
                "# the tenant's Meta app: System User token, App secret, our verify token\naccess_token={}\napp_secret={}\nverify_token={}\n",
                ids.access_token, ids.app_secret, ids.verify_token
            ),
        )?;
        self.say(&format!(
            "  the three secrets are in {} (mode 600), never on the command line",
            secrets.display()
        ));
        let path = secrets.to_string_lossy().into_owned();
        let args = [
            "channel",
            "connect",
            "--phone-number-id",
            &ids.phone_number_id,
            "--waba-id",
            &ids.waba_id,
            "--secrets",
            &path,
        ];
        self.say(&format!("  $ fwa {}", args.join(" ")));
        let out = self.fwa_raw(&args, None).await;
        // Whatever the outcome: the file was only the way in.
        let _ = std::fs::remove_file(&secrets);
        let out = out?;
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for line in printed.lines() {
            self.say(&format!("    {line}"));
        }
        if !out.status.success() {
            return Err(format!("channel connect failed: {}", printed.trim()));
        }
        self.say("  the secrets file is removed: Secrets Manager holds the secrets now");
        for secret in [&ids.access_token, &ids.app_secret, &ids.verify_token] {
            if printed.contains(secret.as_str()) {
                return Err("fwa printed a secret".into());
            }
        }
        let status = self.read(&["status"]).await?;
        if status["phone_number_id"] != ids.phone_number_id.as_str() {
            return Err(format!(
                "the channel status does not show the app: {status}"
            ));
        }
        Ok(format!(
            "tenant {} is connected (Meta accepted its token); no secret was printed",
            ids.tenant
        ))
    }

    async fn verify_and_save(&self) -> Step {
        let ids = &self.ids;
        let callback = self.world.stack.webhook_url();
        self.say(&format!(
            "  Meta: Verify and Save, callback {callback}, with a mistyped verify token"
        ));
        let wrong = self
            .meta(
                "/_sandbox/verify_and_save",
                json!({"phone_number_id": ids.phone_number_id, "callback_url": callback, "verify_token": format!("{}x", ids.verify_token)}),
            )
            .await?;
        self.say(&format!(
            "    saved: {}, callback answered HTTP {}",
            wrong["saved"], wrong["http_status"]
        ));
        if wrong["saved"] != false {
            return Err(format!("a wrong verify token was saved: {wrong}"));
        }
        self.say("  Meta: Verify and Save again, with the tenant's verify token");
        let right = self
            .meta(
                "/_sandbox/verify_and_save",
                json!({"phone_number_id": ids.phone_number_id, "callback_url": callback, "verify_token": ids.verify_token}),
            )
            .await?;
        self.say(&format!(
            "    saved: {}, challenge echoed: {}",
            right["saved"], right["challenge_echoed"]
        ));
        if right["saved"] != true {
            return Err(format!("Verify and Save failed: {right}"));
        }
        self.say("  the dashboard's webhook fields (messages, message_template_status_update, ...) are a real deployment's step: the sandbox sends every field");
        Ok("Meta sent hub.challenge and saved the callback only when it came back; a wrong token was refused".into())
    }

    async fn submit_templates(&self) -> Step {
        self.fwa(&["submit-templates"]).await?;
        let status = self
            .until(&["status"], "six templates PENDING", |v| {
                let t = v["templates"].as_array().cloned().unwrap_or_default();
                t.len() == 6 && t.iter().all(|t| t["status"] == "PENDING")
            })
            .await?;
        let _ = status;
        Ok("six templates submitted; Meta shows all six PENDING".into())
    }

    async fn enqueue_while_pending(&self) -> Step {
        let ids = &self.ids;
        self.fwa(&["csm", "add", "csm-priya", &spaced(&ids.priya)])
            .await?;
        self.fwa(&["csm", "add", "csm-arjun", &ids.arjun]).await?;
        self.fwa(&["csm", "list"]).await?;
        for (key, to, event, health) in [
            (&ids.usage, &ids.priya, "usage_threshold", "good"),
            (&ids.invoice, &ids.priya, "overdue_invoice", "poor"),
            (&ids.escalation, &ids.arjun, "escalation", "platinum"),
        ] {
            self.fwa(&[
                "enqueue", "--to", to, "--key", key, "--event", event, "--health", health,
            ])
            .await?;
        }
        self.until(&["status"], "three alerts waiting", |v| {
            v["waiting_alerts"] == 3
        })
        .await?;
        self.fwa(&["timeline", &ids.usage]).await?;
        self.fwa(&["status"]).await?;
        Ok("three alerts wait outside the send queue for their templates".into())
    }

    async fn approval_at_hour_30(&self) -> Step {
        let ids = &self.ids;
        self.fwa(&["clock", "advance", "30h"]).await?;
        // The sweep ran: nothing was approved, so nothing may move.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let still = self.read(&["status"]).await?;
        if still["waiting_alerts"] != 3 {
            return Err(format!(
                "the alerts did not keep waiting through hour 30: {still}"
            ));
        }
        self.say(
            "  the three alerts still wait at hour 30 (the sweep found their templates PENDING)",
        );
        for name in [
            "fincelo_usage_opportunity",
            "fincelo_usage_heads_up",
            "fincelo_usage_risk",
            "fincelo_collections_personal",
            "fincelo_collections_urgent",
        ] {
            self.say(&format!(
                "  Meta: {}",
                self.meta_decides(name, "APPROVED", None).await?
            ));
        }
        let mut sent = Vec::new();
        for (key, template) in [
            (&ids.usage, "fincelo_usage_opportunity"),
            (&ids.invoice, "fincelo_collections_urgent"),
        ] {
            let t = self.alert_in(key, "sent").await?;
            if t["mode"] != "template" || t["template"] != template {
                return Err(format!("{key} was not sent as {template}: {t}"));
            }
            let at = t["events"]
                .as_array()
                .and_then(|e| e.iter().find(|e| e["event"] == "sent"))
                .and_then(|e| e["at"].as_i64())
                .unwrap_or(0);
            if self.hours_since_start(at) < 30.0 {
                return Err(format!("{key} was sent before hour 30: {t}"));
            }
            sent.push(format!(
                "{key} as {template} at hour {:.1}",
                self.hours_since_start(at)
            ));
        }
        self.fwa(&["timeline", &ids.usage]).await?;
        Ok(format!("sent once each: {}", sent.join(", ")))
    }

    async fn reply_and_free_form(&self) -> Step {
        let ids = &self.ids;
        self.fwa(&[
            "reply",
            "--from",
            &ids.priya,
            "--text",
            "Looking at Globex now",
        ])
        .await?;
        let w = self
            .until(&["window", &ids.priya], "the CSM's window open", |v| {
                v["open"] == true
            })
            .await?;
        self.fwa(&["window", &ids.priya]).await?;
        self.fwa(&[
            "enqueue",
            "--to",
            &ids.priya,
            "--key",
            &ids.free_form,
            "--event",
            "usage_threshold",
            "--health",
            "poor",
            "--text",
            "Globex is at 95% of its Growth plan; renewal in 14 days",
        ])
        .await?;
        let t = self.alert_in(&ids.free_form, "sent").await?;
        if t["mode"] != "free_form" {
            return Err(format!("the alert did not go free-form: {t}"));
        }
        self.fwa(&["timeline", &ids.free_form]).await?;
        Ok(format!(
            "the window is open for {} h; the alert went as free-form text",
            w["seconds_left"].as_i64().unwrap_or(0) / 3600
        ))
    }

    async fn rejection_parks(&self) -> Step {
        let ids = &self.ids;
        self.fwa(&["clock", "advance", "10h"]).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let t = self.read(&["timeline", &ids.escalation]).await?;
        if t["state"] != "waiting" {
            return Err(format!(
                "the escalation alert did not wait through hour 40: {t}"
            ));
        }
        self.say("  the escalation alert still waits at hour 40 (the send queue alone would have dropped it after 8 h 20 min)");
        self.say(&format!(
            "  Meta: {}",
            self.meta_decides(
                "fincelo_escalation_notify",
                "REJECTED",
                Some("INVALID_FORMAT")
            )
            .await?
        ));
        let parked = self
            .until(&["parked"], "the escalation alert parked", |v| {
                v["parked"].as_array().is_some_and(|l| {
                    l.iter().any(|p| {
                        p["idempotency_key"] == ids.escalation.as_str()
                            && p["reason"] == "template_rejected"
                    })
                })
            })
            .await?;
        let entry = parked["parked"]
            .as_array()
            .and_then(|l| {
                l.iter()
                    .find(|p| p["idempotency_key"] == ids.escalation.as_str())
            })
            .cloned()
            .unwrap_or_default();
        if !entry["detail"]
            .as_str()
            .is_some_and(|d| d.contains("INVALID_FORMAT"))
        {
            return Err(format!("the parked alert lacks Meta's reason: {entry}"));
        }
        self.fwa(&["parked"]).await?;
        self.fwa(&["timeline", &ids.escalation]).await?;
        Ok(format!(
            "parked as template_rejected with Meta's reason: {}",
            entry["detail"].as_str().unwrap_or("")
        ))
    }

    async fn redrive_after_fix(&self) -> Step {
        let ids = &self.ids;
        self.say("  the fix: the template is edited in WhatsApp Manager as Meta's reason says, and reviewed again");
        self.fwa(&["clock", "advance", "2h"]).await?;
        self.say(&format!(
            "  Meta: {}",
            self.meta_decides("fincelo_escalation_notify", "APPROVED", None)
                .await?
        ));
        self.until(&["status"], "the edited template APPROVED", |v| {
            v["templates"].as_array().is_some_and(|l| {
                l.iter()
                    .any(|t| t["name"] == "fincelo_escalation_notify" && t["status"] == "APPROVED")
            })
        })
        .await?;
        // An operator redrives minutes after Meta's approval; each sender
        // instance trusts a status it read for a few seconds (a refusal for
        // 5 s: `UNAPPROVED_TTL` in fincelo's sender), so the journey lets
        // that pass in real time rather than race it.
        tokio::time::sleep(SENDER_STATUS_TRUST).await;
        self.fwa(&["redrive", &ids.escalation]).await?;
        let t = self.alert_in(&ids.escalation, "sent").await?;
        if t["template"] != "fincelo_escalation_notify" {
            return Err(format!("the redriven alert went out otherwise: {t}"));
        }
        let parked = self.read(&["parked"]).await?;
        if parked["parked"].as_array().is_some_and(|l| {
            l.iter()
                .any(|p| p["idempotency_key"] == ids.escalation.as_str())
        }) {
            return Err(format!(
                "the redriven alert is still listed as parked: {parked}"
            ));
        }
        self.fwa(&["timeline", &ids.escalation]).await?;
        let again = self.shown(&["redrive", &ids.escalation]).await?;
        let said = String::from_utf8_lossy(&again.stderr);
        if again.status.success() || !said.contains("is not parked: it was sent") {
            return Err(format!(
                "a second redrive was not refused in plain words: {}",
                said.trim()
            ));
        }
        Ok("redriven once and sent; a second redrive is refused: the key is not parked".into())
    }
}

/// The number as an operator might type it, with spaces (the admin API
/// normalises it).
fn spaced(e164: &str) -> String {
    let (cc, rest) = e164.split_at(3.min(e164.len()));
    let (a, b) = rest.split_at(5.min(rest.len()));
    format!("{cc} {a} {b}")
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::fs::OpenOptions;
    let mut opts = OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}
