//! The sandbox's memory: tenants, messages, templates, windows, rate state,
//! stats and the webhook log, behind one mutex.
//!
//! One lock keeps the rules atomic (a cap check and the acceptance it allows
//! cannot interleave with another request's). Nothing awaits while holding it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};

use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::config::SandboxConfig;
use crate::identity::User;
use crate::knobs::Knobs;
use crate::model::{
    AccountView, MessageRecord, ReadRecord, Stats, TemplateRecord, TenantSpec, TenantView,
    WebhookLogEntry,
};
use crate::rules::{PairBucket, RollingSecond};

/// A registered business phone number.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub spec: TenantSpec,
}

impl Tenant {
    pub fn display_phone_number(&self) -> String {
        self.spec
            .display_phone_number
            .clone()
            .unwrap_or_else(|| format!("1555{}", tail(&self.spec.phone_number_id, 7)))
    }

    pub fn verified_name(&self) -> String {
        self.spec
            .verified_name
            .clone()
            .unwrap_or_else(|| "Fincelo Sandbox".into())
    }

    pub fn view(&self) -> TenantView {
        TenantView {
            phone_number_id: self.spec.phone_number_id.clone(),
            waba_id: self.spec.waba_id.clone(),
            webhook_url: self.spec.webhook_url.clone(),
            display_phone_number: self.display_phone_number(),
            verified_name: self.verified_name(),
        }
    }
}

fn tail(s: &str, n: usize) -> String {
    let digits: Vec<char> = s.chars().filter(char::is_ascii_digit).collect();
    let start = digits.len().saturating_sub(n);
    let t: String = digits[start..].iter().collect();
    format!("{t:0>n$}")
}

/// Everything mutable.
pub struct Store {
    pub tenants: HashMap<String, Tenant>,
    pub messages: Vec<MessageRecord>,
    pub templates: Vec<TemplateRecord>,
    /// (phone_number_id, window key) -> unix seconds of the last inbound
    /// message; the key is the user's ([`crate::identity::window_key`]).
    pub last_inbound: HashMap<(String, String), i64>,
    /// Inbound message ids by the phone number that received them (read receipts).
    pub inbound_ids: HashMap<String, String>,
    /// Registered users ([`crate::identity`]).
    pub users: Vec<User>,
    pub next_user: u64,
    /// WABA conditions (payment issue, contact book, ...); absent = defaults.
    pub accounts: HashMap<String, AccountView>,
    /// (phone_number_id, user key) -> unix ms of the last phone-number interaction.
    pub phone_contacts: HashMap<(String, String), i64>,
    /// (waba_id, user key) pairs in Meta's contact book.
    pub contact_book: HashSet<(String, String)>,
    /// Read receipts the businesses sent.
    pub reads: Vec<ReadRecord>,
    /// (phone_number_id, year, month) -> service messages priced so far.
    pub service_messages: HashMap<(String, i64, u32), u64>,
    /// Templates awaiting the automatic review: (template id, due at, unix ms on the clock).
    pub reviews_due: Vec<(String, i64)>,
    pub throughput: HashMap<String, RollingSecond>,
    pub pairs: HashMap<(String, String), PairBucket>,
    pub stats: Stats,
    pub webhooks: Vec<WebhookLogEntry>,
    pub knobs: Knobs,
    pub rng: StdRng,
}

impl Store {
    pub fn new(knobs: Knobs) -> Self {
        let rng = rng_for(knobs.seed);
        Store {
            tenants: HashMap::new(),
            messages: Vec::new(),
            templates: Vec::new(),
            last_inbound: HashMap::new(),
            inbound_ids: HashMap::new(),
            users: Vec::new(),
            next_user: 0,
            accounts: HashMap::new(),
            phone_contacts: HashMap::new(),
            contact_book: HashSet::new(),
            reads: Vec::new(),
            service_messages: HashMap::new(),
            reviews_due: Vec::new(),
            throughput: HashMap::new(),
            pairs: HashMap::new(),
            stats: Stats::default(),
            webhooks: Vec::new(),
            knobs,
            rng,
        }
    }

    /// Replaces the knobs; a (new) seed restarts the random sequence.
    pub fn set_knobs(&mut self, knobs: Knobs) {
        if knobs.seed.is_some() {
            self.rng = rng_for(knobs.seed);
        }
        self.knobs = knobs;
    }

    pub fn reject(&mut self, code: i64) {
        *self
            .stats
            .rejections_by_code
            .entry(code.to_string())
            .or_default() += 1;
    }

    /// Tenants of a WABA, in a stable order.
    pub fn tenants_of_waba(&self, waba_id: &str) -> Vec<Tenant> {
        let mut v: Vec<Tenant> = self
            .tenants
            .values()
            .filter(|t| t.spec.waba_id == waba_id)
            .cloned()
            .collect();
        v.sort_by(|a, b| a.spec.phone_number_id.cmp(&b.spec.phone_number_id));
        v
    }

    /// A WABA's conditions (defaults when never set).
    pub fn account(&self, waba_id: &str) -> AccountView {
        self.accounts
            .get(waba_id)
            .cloned()
            .unwrap_or_else(|| AccountView {
                waba_id: waba_id.to_string(),
                payment_issue: false,
                marketing_messages_api_only: false,
                contact_book: true,
            })
    }

    pub fn token_known(&self, token: &str) -> bool {
        self.tenants.values().any(|t| t.spec.access_token == token)
    }
}

fn rng_for(seed: Option<u64>) -> StdRng {
    match seed {
        Some(s) => StdRng::seed_from_u64(s),
        None => StdRng::from_os_rng(),
    }
}

/// Shared by every handler and background task.
pub struct Shared {
    store: Mutex<Store>,
    pub http: reqwest::Client,
    pub config: SandboxConfig,
    /// Set at shutdown; background deliveries stop retrying.
    pub closed: AtomicBool,
}

pub type AppState = Arc<Shared>;

impl Shared {
    pub fn new(config: SandboxConfig) -> Self {
        Shared {
            store: Mutex::new(Store::new(config.knobs.clone())),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .unwrap_or_else(|_| reqwest::Client::new()),
            config,
            closed: AtomicBool::new(false),
        }
    }

    /// Unix milliseconds on the sandbox's clock (see [`crate::clock`]).
    pub fn now_ms(&self) -> i64 {
        self.config.clock.now_ms()
    }

    /// Unix seconds on the sandbox's clock.
    pub fn now_s(&self) -> i64 {
        self.config.clock.now_s()
    }

    /// The store; a poisoned lock is taken over (the data is still consistent
    /// enough for a test double).
    pub fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }
}
