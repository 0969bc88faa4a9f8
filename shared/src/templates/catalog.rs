//! The catalog of the six WhatsApp message templates, and the choice of one
//! for an account alert.
//!
//! # Why this module exists
//! Meta only delivers business-initiated messages from templates it approved
//! beforehand, and approval takes a day or more. A template that Meta rejects
//! (a placeholder gap, a body ending in a variable, a footer one character too
//! long) costs that day again. So the templates are *data* (`templates.yaml`,
//! embedded with `include_str!`), read by both the submitter and the sender,
//! and everything Meta would reject is checked here, on load and in the unit
//! tests at the bottom, rather than by Meta's reviewers.
//!
//! # Boundaries
//! This module knows template definitions, Meta's rules for them, the JSON
//! shapes of a create request and of the `template` object of a send, and the
//! seed's table that picks a template for an alert. It does no I/O: the Graph
//! API adapter posts what [`TemplateDef::create_request`] and
//! [`TemplateDef::send_component`] build.
//!
//! # Invariants
//! A [`Catalog`] only exists validated ([`Catalog::from_yaml`] is the only
//! constructor), always holds the six templates [`Catalog::choose`] can return,
//! and keeps them in file order. Parameter values are checked on every send
//! because they come from upstream alert requests, i.e. from outside.
//!
//! # The limits, and where they come from
//! Meta publishes them across several pages; the numbers below were checked
//! against these (quoted where used):
//! - Meta's OpenAPI description of the Business Messaging API v23.0
//!   (`POST /{Version}/{WABA-ID}/message_templates`): the request shape
//!   `{name, language, category, components: [{type: BODY, text, example:
//!   {body_text: [[..]]}}, {type: FOOTER, text}, {type: BUTTONS, buttons:
//!   [{type: QUICK_REPLY, text}]}]}`.
//! - Braze, "WhatsApp message and image formats": "Body 1,024 characters;
//!   Footer 60; Button label (URL, phone, quick reply) 25; Template name 512
//!   (lowercase, alphanumeric and underscores only)".
//! - Bird, "Text template blocks": "Each template can include up to 10 quick
//!   reply buttons."
//! - 360dialog, "Template Elements": "Any template that has one or more
//!   variables requires a sample in order to be submitted for review."
//! - Twilio, error 63040 (templates rejected by WhatsApp): "Template
//!   placeholders are not sequential in order ... {{3}} does not exist";
//!   "placeholders cannot be right next to each other"; "Template body cannot
//!   start or end with a placeholder"; "Template footer cannot have ... the \n
//!   newline character".
//! - whatsapp-api-js, `BodyParameter`: "For text parameter, the character limit
//!   is 32768 if only one BodyComponent is used for the Template, else it's
//!   1024".
//! - Meta's error 132018 as reported verbatim in netflie/whatsapp-cloud-api
//!   issue #201: "Param text cannot have new-line/tab characters or more than 4
//!   consecutive spaces".

use std::collections::HashSet;
use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Map, Value};

/// The embedded template file. THE one line to adjust when the file moves:
/// in `shared/src/templates/catalog.rs` with the file at
/// `shared/data/templates.yaml` it reads `include_str!("../../data/templates.yaml")`.
const BUILTIN_YAML: &str = include_str!("../../data/templates.yaml");

/// Template name: "512 characters (lowercase, alphanumeric and underscores
/// only)" (Braze, WhatsApp message formats; Meta's own create-template page
/// says the same).
pub const NAME_MAX: usize = 512;
/// Body text: "1,024 characters" (Braze; Bird "Text templates": "Main message
/// content (max 1024 characters)").
pub const BODY_MAX: usize = 1024;
/// Footer text: "60 characters" (Braze; Bird: "max 60 characters").
pub const FOOTER_MAX: usize = 60;
/// Quick-reply button label: "25 characters" (Braze: "Button label (URL,
/// phone, quick reply) 25").
pub const BUTTON_TEXT_MAX: usize = 25;
/// "Each template can include up to 10 quick reply buttons" (Bird, "Text
/// template blocks"; Braze: "up to 10 buttons").
pub const QUICK_REPLIES_MAX: usize = 10;
/// One text parameter of a body: 1024 characters when the template has other
/// components, 32768 when the body is its only one (whatsapp-api-js,
/// `BodyParameter`, after Meta's send-message reference). Ours carry footers
/// and buttons, and 1024 is the safe reading of "other components", so 1024 is
/// enforced for every template.
pub const PARAM_MAX: usize = 1024;
/// "Param text cannot have new-line/tab characters or more than 4 consecutive
/// spaces" (Meta error 132018, quoted in netflie/whatsapp-cloud-api#201).
pub const PARAM_MAX_CONSECUTIVE_SPACES: usize = 4;

/// The six templates of the seed, in the order of its table. `choose` relies
/// on all six; `from_yaml` refuses a file without any of them.
const REQUIRED: [&str; 6] = [
    "fincelo_usage_opportunity",
    "fincelo_usage_heads_up",
    "fincelo_usage_risk",
    "fincelo_collections_personal",
    "fincelo_collections_urgent",
    "fincelo_escalation_notify",
];

/// Index into [`REQUIRED`] (and into `Catalog::required`), one per row of the
/// seed's table.
#[derive(Debug, Clone, Copy)]
enum Slot {
    UsageOpportunity = 0,
    UsageHeadsUp = 1,
    UsageRisk = 2,
    CollectionsPersonal = 3,
    CollectionsUrgent = 4,
    EscalationNotify = 5,
}

// ---------------------------------------------------------------------------
// Newtypes and enums
// ---------------------------------------------------------------------------

/// A template name Meta accepts: 1..=512 characters of `a-z`, `0-9`, `_`.
/// Parsing is the only way in, so a `TemplateName` in hand is valid.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TemplateName(String);

/// Why a string is not a [`TemplateName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateNameError {
    #[error("a template name must not be empty")]
    Empty,
    #[error("a template name has at most {max} characters, this one has {len}")]
    TooLong { len: usize, max: usize },
    #[error(
        "a template name may only hold lowercase letters, digits and underscores; found {found:?} at character {index}"
    )]
    BadChar { found: char, index: usize },
}

impl TemplateName {
    pub fn parse(s: &str) -> Result<TemplateName, TemplateNameError> {
        if s.is_empty() {
            return Err(TemplateNameError::Empty);
        }
        // All allowed characters are ASCII, so a valid name's byte length is
        // its character count; count characters anyway for the error message.
        let len = s.chars().count();
        if len > NAME_MAX {
            return Err(TemplateNameError::TooLong { len, max: NAME_MAX });
        }
        if let Some((index, found)) = s
            .chars()
            .enumerate()
            .find(|&(_, c)| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
        {
            return Err(TemplateNameError::BadChar { found, index });
        }
        Ok(TemplateName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TemplateName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for TemplateName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for TemplateName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TemplateName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        TemplateName::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Meta's template category. AUTHENTICATION exists too but is not ours: its
/// bodies are fixed by Meta and carry one-time codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Category {
    Utility,
    Marketing,
}

/// What happened on an account, as upstream alert requests name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertEvent {
    UsageThreshold,
    OverdueInvoice,
    Escalation,
}

impl AlertEvent {
    pub const ALL: [AlertEvent; 3] = [
        AlertEvent::UsageThreshold,
        AlertEvent::OverdueInvoice,
        AlertEvent::Escalation,
    ];
}

/// A customer's health grade, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Platinum,
    Good,
    Average,
    Poor,
    Critical,
}

impl Health {
    pub const ALL: [Health; 5] = [
        Health::Platinum,
        Health::Good,
        Health::Average,
        Health::Poor,
        Health::Critical,
    ];

    /// Poor or critical: the seed's "at-risk customers".
    pub fn at_risk(self) -> bool {
        matches!(self, Health::Poor | Health::Critical)
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why a template file was refused. Every variant names the template (and the
/// language where two could share a name) so a failing `cargo test` says what
/// to fix in `templates.yaml`.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("templates file does not match the catalog schema: {0}")]
    Yaml(#[source] serde_yaml::Error),
    #[error("template {name:?}: bad name: {source}")]
    BadName {
        name: String,
        #[source]
        source: TemplateNameError,
    },
    #[error("template {template}: language {language:?} is not a Meta language code such as en or en_US")]
    BadLanguage { template: String, language: String },
    #[error("template {template}: {part} must not be empty")]
    Empty { template: String, part: String },
    #[error("template {template}: {part} is {len} characters, Meta allows at most {max}")]
    TooLong {
        template: String,
        part: String,
        len: usize,
        max: usize,
    },
    #[error("template {template}: {count} quick-reply buttons, Meta allows at most {max}")]
    TooManyButtons {
        template: String,
        count: usize,
        max: usize,
    },
    /// A quick reply whose label names no action ([`crate::responses::Action`]):
    /// a tap on it could not be answered.
    #[error("template {template}: button {label:?} names no action a CSM can take (known: Acknowledge, Snooze 7 days, Snooze 3 days, Escalate, Call me)")]
    UnknownAction { template: String, label: String },
    #[error(
        "template {template}: a quick-reply payload is {len} characters, the limit held is {max}"
    )]
    PayloadTooLong {
        template: String,
        len: usize,
        max: usize,
    },
    #[error("template {template}: {part}: {reason}")]
    BadText {
        template: String,
        part: String,
        reason: String,
    },
    #[error("template {template}: {text:?} in the body is not a positional placeholder {{{{1}}}}..{{{{n}}}}")]
    BadPlaceholder { template: String, text: String },
    #[error("template {template}: placeholder {{{{{expected}}}}} is missing (found {{{{{found}}}}} where {{{{{expected}}}}} was due); Meta requires {{{{1}}}}..{{{{n}}}} in order without gaps")]
    PlaceholderGap {
        template: String,
        expected: usize,
        found: usize,
    },
    #[error("template {template}: placeholder {{{{{found}}}}} repeats or comes out of order where {{{{{expected}}}}} was due; Meta requires {{{{1}}}}..{{{{n}}}} in order, each once")]
    PlaceholderOutOfOrder {
        template: String,
        expected: usize,
        found: usize,
    },
    #[error("template {template}: the body {which} with a variable, which Meta rejects (INVALID_FORMAT); put words before the first and after the last placeholder")]
    StartsOrEndsWithVariable {
        template: String,
        which: &'static str,
    },
    #[error("template {template}: placeholders {{{{{first}}}}} and {{{{{second}}}}} are side by side; Meta rejects adjacent variables")]
    AdjacentVariables {
        template: String,
        first: usize,
        second: usize,
    },
    #[error("template {template}: no example for placeholder {{{{{placeholder}}}}}; Meta requires example.body_text with one sample per variable")]
    MissingExample {
        template: String,
        placeholder: usize,
    },
    #[error("template {template}: {examples} examples for {placeholders} placeholders")]
    ExtraExamples {
        template: String,
        placeholders: usize,
        examples: usize,
    },
    #[error("template {template}: the example for {{{{{placeholder}}}}} would be refused as a parameter: {reason}")]
    BadExample {
        template: String,
        placeholder: usize,
        #[source]
        reason: ParamProblem,
    },
    #[error("template {template}: {params} params named for {placeholders} placeholders")]
    ParamsMismatch {
        template: String,
        placeholders: usize,
        params: usize,
    },
    #[error(
        "template {template}: param name {param:?} must be a unique snake_case word (a-z, 0-9, _)"
    )]
    BadParamName { template: String, param: String },
    #[error("template {name} is defined twice for language {language}")]
    DuplicateName { name: String, language: String },
    #[error("template {0} is missing; the catalog needs all six of the seed's templates")]
    MissingTemplate(String),
}

/// What is wrong with one parameter value (or one example).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamProblem {
    #[error("it is empty")]
    Empty,
    #[error("it is {len} characters, Meta allows at most {max}")]
    TooLong { len: usize, max: usize },
    #[error("it contains a newline, which Meta rejects in template parameters (error 132018)")]
    Newline,
    #[error("it contains a tab, which Meta rejects in template parameters (error 132018)")]
    Tab,
    #[error("it contains {run} consecutive spaces, Meta allows at most {max} (error 132018)")]
    TooManySpaces { run: usize, max: usize },
}

/// Why the values for a send were refused. The values themselves are left out
/// of the message: they are customer data and errors end up in logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("template {template} takes {expected} parameters, got {got}")]
    CountMismatch {
        template: String,
        expected: usize,
        got: usize,
    },
    /// `index` is the placeholder number, 1-based like `{{1}}`.
    #[error("template {template}: parameter {{{{{index}}}}}: {reason}")]
    Invalid {
        template: String,
        index: usize,
        #[source]
        reason: ParamProblem,
    },
}

// ---------------------------------------------------------------------------
// Template definitions
// ---------------------------------------------------------------------------

/// One template, as validated from the file. Fields are public for reading;
/// build one through [`Catalog::from_yaml`] to get the guarantees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateDef {
    pub name: TemplateName,
    pub category: Category,
    pub language: String,
    pub body: String,
    /// One sample per placeholder, in order (Meta's `example.body_text`).
    pub examples: Vec<String>,
    /// The name of each positional parameter, in order, for documentation and
    /// for checking what an upstream request supplies.
    pub params: Vec<String>,
    pub footer: Option<String>,
    /// Quick-reply button texts.
    pub buttons: Vec<String>,
}

impl TemplateDef {
    /// The number of positional parameters (`{{1}}..{{n}}`) of the body.
    pub fn param_count(&self) -> usize {
        scan(&self.body)
            .into_iter()
            .filter_map(|p| match p {
                Piece::Var(n) => Some(n),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }

    /// The JSON body for `POST /{v}/{waba-id}/message_templates`, in the shape
    /// of Meta's OpenAPI examples (v23.0): the body with `example.body_text`
    /// as a list holding ONE list of samples, then the footer, then the
    /// quick-reply buttons. `example` is left out when the body has no
    /// variables (it is only required when it has some).
    pub fn create_request(&self) -> Value {
        let mut body = Map::new();
        body.insert("type".into(), json!("BODY"));
        body.insert("text".into(), json!(self.body));
        if !self.examples.is_empty() {
            body.insert("example".into(), json!({ "body_text": [self.examples] }));
        }
        let mut components = vec![Value::Object(body)];
        if let Some(footer) = &self.footer {
            components.push(json!({ "type": "FOOTER", "text": footer }));
        }
        if !self.buttons.is_empty() {
            let buttons: Vec<Value> = self
                .buttons
                .iter()
                .map(|text| json!({ "type": "QUICK_REPLY", "text": text }))
                .collect();
            components.push(json!({ "type": "BUTTONS", "buttons": buttons }));
        }
        json!({
            "name": self.name,
            "language": self.language,
            "category": self.category,
            "components": components,
        })
    }

    /// The `template` object of a send (`POST /{v}/{phone-number-id}/messages`
    /// with `"type": "template"`). The quick replies' payloads are added by the
    /// sender ([`crate::responses::quick_reply_components`]): they name the
    /// alert, which this module does not know. Refuses values Meta would refuse, so the
    /// sender can fail the message as permanent instead of retrying a 400.
    pub fn send_component(&self, values: &[String]) -> Result<Value, ParamError> {
        self.check_values(values)?;
        let components = if values.is_empty() {
            Vec::new()
        } else {
            let parameters: Vec<Value> = values
                .iter()
                .map(|v| json!({ "type": "text", "text": v }))
                .collect();
            vec![json!({ "type": "body", "parameters": parameters })]
        };
        Ok(json!({
            "name": self.name,
            "language": { "code": self.language },
            "components": components,
        }))
    }

    /// The body with `values` in place of `{{1}}..{{n}}`, as the CSM will
    /// read it: for logs, timelines and tests. Same checks as a send.
    pub fn render(&self, values: &[String]) -> Result<String, ParamError> {
        self.check_values(values)?;
        let mut out =
            String::with_capacity(self.body.len() + values.iter().map(String::len).sum::<usize>());
        for piece in scan(&self.body) {
            match piece {
                Piece::Text(t) | Piece::Bad(t) => out.push_str(t),
                Piece::Var(n) => match values.get(n.wrapping_sub(1)) {
                    Some(v) => out.push_str(v),
                    // Unreachable for a validated body; keep the placeholder
                    // rather than panic on a hand-built definition.
                    None => out.push_str(&format!("{{{{{n}}}}}")),
                },
            }
        }
        Ok(out)
    }

    /// Checks `values` against this template: one per placeholder, each
    /// within Meta's rules. The sender checks a request on intake, so an
    /// alert that could never be sent as its template is parked at once.
    pub fn check_values(&self, values: &[String]) -> Result<(), ParamError> {
        let expected = self.param_count();
        if values.len() != expected {
            return Err(ParamError::CountMismatch {
                template: self.name.to_string(),
                expected,
                got: values.len(),
            });
        }
        for (i, v) in values.iter().enumerate() {
            check_param_value(v).map_err(|reason| ParamError::Invalid {
                template: self.name.to_string(),
                index: i + 1,
                reason,
            })?;
        }
        Ok(())
    }
}

/// Meta's rules for one text parameter (see [`PARAM_MAX`] and
/// [`PARAM_MAX_CONSECUTIVE_SPACES`]). Blank counts as empty: Meta answers an
/// empty `text` with a 400, and a blank one reads as a broken alert.
fn check_param_value(v: &str) -> Result<(), ParamProblem> {
    if v.trim().is_empty() {
        return Err(ParamProblem::Empty);
    }
    let len = v.chars().count();
    if len > PARAM_MAX {
        return Err(ParamProblem::TooLong {
            len,
            max: PARAM_MAX,
        });
    }
    if v.contains(['\n', '\r']) {
        return Err(ParamProblem::Newline);
    }
    if v.contains('\t') {
        return Err(ParamProblem::Tab);
    }
    let mut run = 0;
    let mut longest = 0;
    for c in v.chars() {
        run = if c == ' ' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    if longest > PARAM_MAX_CONSECUTIVE_SPACES {
        return Err(ParamProblem::TooManySpaces {
            run: longest,
            max: PARAM_MAX_CONSECUTIVE_SPACES,
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Placeholder scanning
// ---------------------------------------------------------------------------

/// A body cut at its `{{..}}` markers.
#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    /// `{{n}}` with n >= 1 written without leading zeros.
    Var(usize),
    /// A `{{..}}` that is not a positional placeholder, or an unclosed `{{`.
    Bad(&'a str),
}

fn scan(s: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            out.push(Piece::Text(&rest[..open]));
        }
        let after = &rest[open + 2..];
        match after.find("}}") {
            Some(close) => {
                let whole = &rest[open..open + 2 + close + 2];
                out.push(match positional(&after[..close]) {
                    Some(n) => Piece::Var(n),
                    None => Piece::Bad(whole),
                });
                rest = &after[close + 2..];
            }
            None => {
                out.push(Piece::Bad(&rest[open..]));
                rest = "";
            }
        }
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    out
}

fn positional(inner: &str) -> Option<usize> {
    let digits_only = !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || inner.starts_with('0') {
        return None;
    }
    inner.parse().ok()
}

// ---------------------------------------------------------------------------
// Loading and validation
// ---------------------------------------------------------------------------

/// The file as written; `deny_unknown_fields` turns a typo such as
/// `exmaples:` into an error instead of a silently missing example.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    templates: Vec<RawTemplate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplate {
    /// A plain string here so a bad name is reported as `BadName` with the
    /// template's name, not as a YAML position.
    name: String,
    category: Category,
    language: String,
    body: String,
    #[serde(default)]
    examples: Vec<String>,
    #[serde(default)]
    params: Vec<String>,
    #[serde(default)]
    footer: Option<String>,
    #[serde(default)]
    buttons: Vec<String>,
}

/// The validated templates, in file order.
#[derive(Debug, Clone)]
pub struct Catalog {
    templates: Vec<TemplateDef>,
    /// Position in `templates` of each of [`REQUIRED`], same order.
    required: [usize; 6],
}

impl Catalog {
    /// The embedded `templates.yaml`, parsed and validated once per process.
    ///
    /// # Panics
    /// Only if the embedded file is invalid, which the unit test
    /// `builtin_file_loads_with_all_six_templates` rules out before a build
    /// can ship.
    pub fn builtin() -> &'static Catalog {
        static BUILTIN: OnceLock<Catalog> = OnceLock::new();
        BUILTIN.get_or_init(|| match Catalog::from_yaml(BUILTIN_YAML) {
            Ok(catalog) => catalog,
            Err(e) => panic!("the embedded templates.yaml is invalid: {e}"),
        })
    }

    /// Parses and validates a template file; the first problem found is
    /// returned, naming the template and what Meta would object to.
    pub fn from_yaml(src: &str) -> Result<Catalog, CatalogError> {
        let raw: RawFile = serde_yaml::from_str(src).map_err(CatalogError::Yaml)?;
        let mut templates = Vec::with_capacity(raw.templates.len());
        let mut seen = HashSet::new();
        for r in raw.templates {
            let def = validate(r)?;
            if !seen.insert((def.name.clone(), def.language.clone())) {
                return Err(CatalogError::DuplicateName {
                    name: def.name.to_string(),
                    language: def.language,
                });
            }
            templates.push(def);
        }
        let mut required = [0usize; 6];
        for (slot, name) in required.iter_mut().zip(REQUIRED) {
            *slot = templates
                .iter()
                .position(|t| t.name.as_str() == name)
                .ok_or_else(|| CatalogError::MissingTemplate(name.to_owned()))?;
        }
        Ok(Catalog {
            templates,
            required,
        })
    }

    /// The first template of that name in file order (the file may hold one
    /// per language; today it holds `en` only).
    pub fn get(&self, name: &str) -> Option<&TemplateDef> {
        self.templates.iter().find(|t| t.name.as_str() == name)
    }

    pub fn all(&self) -> &[TemplateDef] {
        &self.templates
    }

    /// The seed's table:
    ///
    /// | event           | customer                     | template                      |
    /// |-----------------|------------------------------|-------------------------------|
    /// | usage_threshold | platinum or good             | fincelo_usage_opportunity     |
    /// | usage_threshold | average                      | fincelo_usage_heads_up        |
    /// | usage_threshold | poor or critical             | fincelo_usage_risk            |
    /// | overdue_invoice | premium, or not at risk      | fincelo_collections_personal  |
    /// | overdue_invoice | at risk (poor or critical)   | fincelo_collections_urgent    |
    /// | escalation      | any                          | fincelo_escalation_notify     |
    ///
    /// The two overdue rows overlap for a premium customer who is at risk.
    /// **Premium wins**: the first row reads "premium, or not at risk", so a
    /// premium account always gets the personal collections template, whatever
    /// its health. `premium` matters for overdue invoices only.
    pub fn choose(&self, event: AlertEvent, health: Health, premium: bool) -> &TemplateDef {
        let slot = match event {
            AlertEvent::UsageThreshold => match health {
                Health::Platinum | Health::Good => Slot::UsageOpportunity,
                Health::Average => Slot::UsageHeadsUp,
                Health::Poor | Health::Critical => Slot::UsageRisk,
            },
            AlertEvent::OverdueInvoice if premium || !health.at_risk() => Slot::CollectionsPersonal,
            AlertEvent::OverdueInvoice => Slot::CollectionsUrgent,
            AlertEvent::Escalation => Slot::EscalationNotify,
        };
        &self.templates[self.required[slot as usize]]
    }
}

fn validate(r: RawTemplate) -> Result<TemplateDef, CatalogError> {
    let name = TemplateName::parse(&r.name).map_err(|source| CatalogError::BadName {
        name: r.name.clone(),
        source,
    })?;
    let template = name.to_string();

    if !is_language_code(&r.language) {
        return Err(CatalogError::BadLanguage {
            template,
            language: r.language,
        });
    }

    // Body: present, short enough, positional placeholders 1..n in order.
    if r.body.trim().is_empty() {
        return Err(CatalogError::Empty {
            template,
            part: "body".into(),
        });
    }
    check_len(&template, "body", &r.body, BODY_MAX)?;
    let pieces = scan(&r.body);
    let mut vars = Vec::new();
    for piece in &pieces {
        match piece {
            Piece::Var(n) => vars.push(*n),
            Piece::Bad(text) => {
                return Err(CatalogError::BadPlaceholder {
                    template,
                    text: (*text).to_owned(),
                })
            }
            Piece::Text(_) => {}
        }
    }
    for (i, &found) in vars.iter().enumerate() {
        let expected = i + 1;
        if found > expected {
            return Err(CatalogError::PlaceholderGap {
                template,
                expected,
                found,
            });
        }
        if found < expected {
            return Err(CatalogError::PlaceholderOutOfOrder {
                template,
                expected,
                found,
            });
        }
    }
    check_variable_placement(&template, &pieces)?;

    // Examples and param names: one per placeholder.
    let count = vars.len();
    if r.examples.len() < count {
        return Err(CatalogError::MissingExample {
            template,
            placeholder: r.examples.len() + 1,
        });
    }
    if r.examples.len() > count {
        return Err(CatalogError::ExtraExamples {
            template,
            placeholders: count,
            examples: r.examples.len(),
        });
    }
    for (i, example) in r.examples.iter().enumerate() {
        check_param_value(example).map_err(|reason| CatalogError::BadExample {
            template: template.clone(),
            placeholder: i + 1,
            reason,
        })?;
    }
    if r.params.len() != count {
        return Err(CatalogError::ParamsMismatch {
            template,
            placeholders: count,
            params: r.params.len(),
        });
    }
    let mut param_names = HashSet::new();
    for p in &r.params {
        let snake = !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !snake || !param_names.insert(p.as_str()) {
            return Err(CatalogError::BadParamName {
                template,
                param: p.clone(),
            });
        }
    }

    // Footer: short, static, one line.
    if let Some(footer) = &r.footer {
        if footer.trim().is_empty() {
            return Err(CatalogError::Empty {
                template,
                part: "footer".into(),
            });
        }
        check_len(&template, "footer", footer, FOOTER_MAX)?;
        check_static_line(&template, "footer", footer)?;
    }

    // Quick replies: few, short, static.
    if r.buttons.len() > QUICK_REPLIES_MAX {
        return Err(CatalogError::TooManyButtons {
            template,
            count: r.buttons.len(),
            max: QUICK_REPLIES_MAX,
        });
    }
    for (i, text) in r.buttons.iter().enumerate() {
        let part = format!("button {} ({text:?})", i + 1);
        if text.trim().is_empty() {
            return Err(CatalogError::Empty { template, part });
        }
        check_len(&template, &part, text, BUTTON_TEXT_MAX)?;
        check_static_line(&template, &part, text)?;
        // Every quick reply is answerable: it names an action, and its
        // payload (sent with the template) fits Meta's limit.
        if crate::responses::Action::from_label(text).is_none() {
            return Err(CatalogError::UnknownAction {
                template,
                label: text.clone(),
            });
        }
    }
    let longest = crate::responses::longest_payload();
    if !r.buttons.is_empty() && longest > crate::responses::PAYLOAD_MAX {
        return Err(CatalogError::PayloadTooLong {
            template,
            len: longest,
            max: crate::responses::PAYLOAD_MAX,
        });
    }

    Ok(TemplateDef {
        name,
        category: r.category,
        language: r.language,
        body: r.body,
        examples: r.examples,
        params: r.params,
        footer: r.footer,
        buttons: r.buttons,
    })
}

fn check_len(template: &str, part: &str, text: &str, max: usize) -> Result<(), CatalogError> {
    let len = text.chars().count();
    if len > max {
        return Err(CatalogError::TooLong {
            template: template.to_owned(),
            part: part.to_owned(),
            len,
            max,
        });
    }
    Ok(())
}

/// Footers and quick replies take no variables and no line breaks ("Template
/// footer cannot have emojis or the \n newline character", Twilio 63040).
fn check_static_line(template: &str, part: &str, text: &str) -> Result<(), CatalogError> {
    let reason = if text.contains("{{") {
        "variables are not allowed here"
    } else if text.contains(['\n', '\r']) {
        "line breaks are not allowed here"
    } else {
        return Ok(());
    };
    Err(CatalogError::BadText {
        template: template.to_owned(),
        part: part.to_owned(),
        reason: reason.to_owned(),
    })
}

/// "Template body cannot start or end with a placeholder" and "placeholders
/// cannot be right next to each other" (Twilio 63040, relaying Meta's review).
/// Deliberately stricter than the letter of the rule: text made only of
/// whitespace and punctuation does not count as words, so `Hi {{1}}.` is
/// refused too. A reviewer reads it as ending with a variable, and a
/// rejection costs a day.
fn check_variable_placement(template: &str, pieces: &[Piece<'_>]) -> Result<(), CatalogError> {
    let is_words = |t: &str| {
        t.chars()
            .any(|c| !(c.is_whitespace() || c.is_ascii_punctuation()))
    };
    let text_before = |i: usize| {
        pieces[..i]
            .iter()
            .any(|p| matches!(p, Piece::Text(t) if is_words(t)))
    };
    let text_after = |i: usize| {
        pieces[i + 1..]
            .iter()
            .any(|p| matches!(p, Piece::Text(t) if is_words(t)))
    };

    let var_positions: Vec<(usize, usize)> = pieces
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match p {
            Piece::Var(n) => Some((i, *n)),
            _ => None,
        })
        .collect();
    let (Some(&(first, _)), Some(&(last, _))) = (var_positions.first(), var_positions.last())
    else {
        return Ok(());
    };
    if !text_before(first) {
        return Err(CatalogError::StartsOrEndsWithVariable {
            template: template.to_owned(),
            which: "starts",
        });
    }
    if !text_after(last) {
        return Err(CatalogError::StartsOrEndsWithVariable {
            template: template.to_owned(),
            which: "ends",
        });
    }
    for pair in var_positions.windows(2) {
        let ((a, first), (b, second)) = (pair[0], pair[1]);
        let separated = pieces[a + 1..b]
            .iter()
            .any(|p| matches!(p, Piece::Text(t) if !t.trim().is_empty()));
        if !separated {
            return Err(CatalogError::AdjacentVariables {
                template: template.to_owned(),
                first,
                second,
            });
        }
    }
    Ok(())
}

/// A shape check for Meta's language codes (`en`, `en_US`, `zh_HK`, `fil`):
/// 2 or 3 lowercase letters, optionally `_` and 2 to 4 uppercase letters or
/// digits. It catches `EN`, `en-US` and blanks, not unsupported languages.
fn is_language_code(s: &str) -> bool {
    let (lang, region) = match s.split_once('_') {
        Some((l, r)) => (l, Some(r)),
        None => (s, None),
    };
    let lang_ok = (2..=3).contains(&lang.len()) && lang.bytes().all(|b| b.is_ascii_lowercase());
    let region_ok = region.is_none_or(|r| {
        (2..=4).contains(&r.len())
            && r.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    });
    lang_ok && region_ok
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    // --- helpers -----------------------------------------------------------

    /// A valid template entry with three placeholders. JSON is valid YAML, so
    /// tests build files as `serde_json::Value`s and mutate one field.
    fn entry(name: &str) -> Value {
        json!({
            "name": name,
            "category": "UTILITY",
            "language": "en",
            "body": "Alert: {{1}} used {{2}}% of the {{3}} plan today.",
            "examples": ["Acme", "92", "Growth"],
            "params": ["customer_name", "usage_percent", "plan_name"],
            "footer": "Fincelo CSM alert",
            "buttons": ["Acknowledge", "Snooze 3 days"],
        })
    }

    /// A valid file of the six required templates, the first one changed by
    /// `edit`.
    fn file_with(edit: impl FnOnce(&mut Map<String, Value>)) -> String {
        let mut templates: Vec<Value> = REQUIRED.iter().map(|n| entry(n)).collect();
        if let Some(Value::Object(first)) = templates.first_mut() {
            edit(first);
        }
        json!({ "templates": templates }).to_string()
    }

    fn load_err(edit: impl FnOnce(&mut Map<String, Value>)) -> CatalogError {
        match Catalog::from_yaml(&file_with(edit)) {
            Ok(_) => panic!("expected the file to be refused"),
            Err(e) => e,
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    const FIRST: &str = "fincelo_usage_opportunity";

    // --- the embedded file ---------------------------------------------------

    /// GIVEN the embedded templates.yaml WHEN it is loaded THEN it validates,
    /// holds the six templates of the seed, and `builtin()` does not panic.
    #[test]
    fn builtin_file_loads_with_all_six_templates() {
        let catalog = match Catalog::from_yaml(BUILTIN_YAML) {
            Ok(c) => c,
            Err(e) => panic!("embedded templates.yaml is invalid: {e}"),
        };
        for name in REQUIRED {
            assert!(catalog.get(name).is_some(), "{name} missing");
        }
        assert_eq!(Catalog::builtin().all().len(), catalog.all().len());
    }

    /// GIVEN every embedded template WHEN sent or rendered with its own
    /// examples THEN Meta's parameter rules pass and every placeholder is
    /// filled, so the examples double as a smoke test of the sender.
    #[test]
    fn builtin_examples_are_valid_send_values() {
        for t in Catalog::builtin().all() {
            assert_eq!(t.param_count(), t.params.len(), "{}", t.name);
            let sent = t.send_component(&t.examples);
            assert!(sent.is_ok(), "{}: {sent:?}", t.name);
            let text = t.render(&t.examples).unwrap_or_default();
            assert!(!text.contains("{{"), "{}: {text}", t.name);
        }
    }

    // --- the choice table ----------------------------------------------------

    /// GIVEN every combination of event x health x premium WHEN a template is
    /// chosen THEN it is the one the seed's table names (written out here
    /// row by row, independently of `choose`).
    #[test]
    fn choose_follows_the_seed_table_for_all_thirty_combinations() {
        let catalog = Catalog::builtin();
        let mut checked = 0;
        for event in AlertEvent::ALL {
            for health in Health::ALL {
                for premium in [false, true] {
                    let expected = match (event, health, premium) {
                        (AlertEvent::UsageThreshold, Health::Platinum | Health::Good, _) => {
                            "fincelo_usage_opportunity"
                        }
                        (AlertEvent::UsageThreshold, Health::Average, _) => {
                            "fincelo_usage_heads_up"
                        }
                        (AlertEvent::UsageThreshold, Health::Poor | Health::Critical, _) => {
                            "fincelo_usage_risk"
                        }
                        (AlertEvent::OverdueInvoice, _, true) => "fincelo_collections_personal",
                        (
                            AlertEvent::OverdueInvoice,
                            Health::Platinum | Health::Good | Health::Average,
                            false,
                        ) => "fincelo_collections_personal",
                        (AlertEvent::OverdueInvoice, Health::Poor | Health::Critical, false) => {
                            "fincelo_collections_urgent"
                        }
                        (AlertEvent::Escalation, _, _) => "fincelo_escalation_notify",
                    };
                    let got = catalog.choose(event, health, premium);
                    assert_eq!(
                        got.name.as_str(),
                        expected,
                        "{event:?} {health:?} premium={premium}"
                    );
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 30);
    }

    /// GIVEN a premium customer in critical health WHEN an invoice is overdue
    /// THEN premium wins the overlap: the personal template, not the urgent one.
    #[test]
    fn premium_customer_at_risk_with_overdue_invoice_gets_the_personal_template() {
        let catalog = Catalog::builtin();
        for health in [Health::Poor, Health::Critical] {
            assert!(health.at_risk());
            let t = catalog.choose(AlertEvent::OverdueInvoice, health, true);
            assert_eq!(t.name.as_str(), "fincelo_collections_personal");
        }
        let t = catalog.choose(AlertEvent::OverdueInvoice, Health::Critical, false);
        assert_eq!(t.name.as_str(), "fincelo_collections_urgent");
    }

    // --- validation ----------------------------------------------------------

    /// GIVEN a body with {{1}} then {{3}} WHEN loaded THEN the error names the
    /// template and the missing {{2}}.
    #[test]
    fn placeholder_gap_names_the_template_and_the_missing_placeholder() {
        let e = load_err(|t| {
            t.insert(
                "body".into(),
                json!("Alert: {{1}} used {{3}}% of the plan today."),
            );
            t.insert("examples".into(), json!(["Acme", "92"]));
            t.insert("params".into(), json!(["a", "b"]));
        });
        assert!(
            matches!(&e, CatalogError::PlaceholderGap { template, expected: 2, found: 3 } if template == FIRST),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains(FIRST) && msg.contains("{{2}} is missing"),
            "{msg}"
        );
    }

    /// GIVEN placeholders out of order or repeated WHEN loaded THEN refused.
    #[test]
    fn placeholders_out_of_order_or_repeated_fail() {
        for body in [
            "Alert: {{2}} used {{1}}% of the plan today.",
            "Alert: {{1}} used {{1}}% of the plan today.",
        ] {
            let e = load_err(|t| {
                t.insert("body".into(), json!(body));
                t.insert("examples".into(), json!(["Acme", "92"]));
                t.insert("params".into(), json!(["a", "b"]));
            });
            assert!(
                matches!(
                    e,
                    CatalogError::PlaceholderGap { .. }
                        | CatalogError::PlaceholderOutOfOrder { .. }
                ),
                "{body}: {e:?}"
            );
        }
    }

    /// GIVEN named, zero-based or unclosed placeholders WHEN loaded THEN
    /// refused as not positional.
    #[test]
    fn non_positional_placeholders_fail() {
        for body in [
            "Hi {{name}} there.",
            "Hi {{0}} there.",
            "Hi {{01}} there.",
            "Hi {{1 there.",
        ] {
            let e = load_err(|t| {
                t.insert("body".into(), json!(body));
            });
            assert!(
                matches!(e, CatalogError::BadPlaceholder { .. }),
                "{body}: {e:?}"
            );
        }
    }

    /// GIVEN three placeholders and two examples WHEN loaded THEN the error
    /// names the template and {{3}}.
    #[test]
    fn missing_example_names_the_placeholder() {
        let e = load_err(|t| {
            t.insert("examples".into(), json!(["Acme", "92"]));
        });
        assert!(
            matches!(&e, CatalogError::MissingExample { template, placeholder: 3 } if template == FIRST),
            "{e:?}"
        );
        assert!(e.to_string().contains("{{3}}"), "{e}");
    }

    /// GIVEN an example Meta would refuse as a parameter WHEN loaded THEN
    /// refused: Meta reviews the examples too.
    #[test]
    fn example_with_a_newline_fails() {
        let e = load_err(|t| {
            t.insert("examples".into(), json!(["Acme\nCorp", "92", "Growth"]));
        });
        assert!(
            matches!(e, CatalogError::BadExample { placeholder: 1, .. }),
            "{e:?}"
        );
    }

    /// GIVEN params that do not match the placeholders WHEN loaded THEN refused.
    #[test]
    fn params_count_must_match_placeholders() {
        let e = load_err(|t| {
            t.insert("params".into(), json!(["customer_name"]));
        });
        assert!(
            matches!(
                e,
                CatalogError::ParamsMismatch {
                    placeholders: 3,
                    params: 1,
                    ..
                }
            ),
            "{e:?}"
        );
        let e = load_err(|t| {
            t.insert("params".into(), json!(["a", "a", "b"]));
        });
        assert!(matches!(e, CatalogError::BadParamName { .. }), "{e:?}");
    }

    /// GIVEN a body, footer or button one character over Meta's limit WHEN
    /// loaded THEN refused with the part, its length and the limit; at the
    /// limit it loads.
    #[test]
    fn too_long_body_footer_or_button_fails() {
        let body_at = |n: usize| {
            format!(
                "Alert: {{{{1}}}} used {{{{2}}}}% of {{{{3}}}} {}",
                "x".repeat(n)
            )
        };
        let base = body_at(0).chars().count();
        assert!(Catalog::from_yaml(&file_with(|t| {
            t.insert("body".into(), json!(body_at(BODY_MAX - base)));
        }))
        .is_ok());
        let e = load_err(|t| {
            t.insert("body".into(), json!(body_at(BODY_MAX + 1 - base)));
        });
        assert!(
            matches!(&e, CatalogError::TooLong { part, len: 1025, max: 1024, .. } if part == "body"),
            "{e:?}"
        );

        assert!(Catalog::from_yaml(&file_with(|t| {
            t.insert("footer".into(), json!("f".repeat(FOOTER_MAX)));
        }))
        .is_ok());
        let e = load_err(|t| {
            t.insert("footer".into(), json!("f".repeat(FOOTER_MAX + 1)));
        });
        assert!(
            matches!(&e, CatalogError::TooLong { part, len: 61, max: 60, .. } if part == "footer"),
            "{e:?}"
        );

        let e = load_err(|t| {
            t.insert("buttons".into(), json!(["b".repeat(BUTTON_TEXT_MAX + 1)]));
        });
        assert!(
            matches!(&e, CatalogError::TooLong { part, len: 26, max: 25, .. } if part.starts_with("button 1")),
            "{e:?}"
        );
    }

    /// GIVEN a quick reply whose label names no action WHEN loaded THEN
    /// refused: a tap on it could not be answered.
    #[test]
    fn a_button_naming_no_action_fails() {
        let e = load_err(|t| {
            t.insert("buttons".into(), json!(["Acknowledge", "Maybe later"]));
        });
        assert!(
            matches!(&e, CatalogError::UnknownAction { label, .. } if label == "Maybe later"),
            "{e:?}"
        );
    }

    /// GIVEN the data file WHEN loaded THEN every quick reply names an action
    /// with a label within Meta's 25 characters, its payload within the 256
    /// held (see `crate::responses`), and its send component carries it.
    #[test]
    fn builtin_quick_replies_are_answerable_within_metas_limits() {
        let catalog = Catalog::builtin();
        let reference = crate::responses::new_reference();
        for name in REQUIRED {
            let t = catalog.get(name).expect("builtin");
            assert!(!t.buttons.is_empty(), "{name} has no buttons");
            let comps = crate::responses::quick_reply_components(&t.buttons, &reference);
            assert_eq!(
                comps.len(),
                t.buttons.len(),
                "{name}: a button without action"
            );
            for (label, c) in t.buttons.iter().zip(&comps) {
                assert!(label.chars().count() <= BUTTON_TEXT_MAX);
                let p = c["parameters"][0]["payload"].as_str().expect("payload");
                assert!(p.len() <= crate::responses::PAYLOAD_MAX, "{name}: {p}");
                assert_eq!(c["sub_type"], "quick_reply");
            }
        }
    }

    /// GIVEN eleven quick replies WHEN loaded THEN refused; ten load.
    #[test]
    fn more_than_ten_quick_replies_fail() {
        // Labels must name actions (see `a_button_naming_no_action_fails`).
        let buttons = |n: usize| {
            ["Acknowledge", "Escalate"]
                .iter()
                .cycle()
                .take(n)
                .collect::<Vec<_>>()
        };
        assert!(Catalog::from_yaml(&file_with(|t| {
            t.insert("buttons".into(), json!(buttons(10)));
        }))
        .is_ok());
        let e = load_err(|t| {
            t.insert("buttons".into(), json!(buttons(11)));
        });
        assert!(
            matches!(
                e,
                CatalogError::TooManyButtons {
                    count: 11,
                    max: 10,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    /// GIVEN a footer with a variable WHEN loaded THEN refused.
    #[test]
    fn footer_with_a_variable_fails() {
        let e = load_err(|t| {
            t.insert("footer".into(), json!("Sent to {{1}}"));
        });
        assert!(matches!(e, CatalogError::BadText { .. }), "{e:?}");
    }

    /// GIVEN names Meta refuses WHEN parsed or loaded THEN refused, naming the
    /// problem.
    #[test]
    fn bad_names_fail() {
        assert_eq!(TemplateName::parse(""), Err(TemplateNameError::Empty));
        assert_eq!(
            TemplateName::parse("Fincelo_alert"),
            Err(TemplateNameError::BadChar {
                found: 'F',
                index: 0
            })
        );
        assert!(matches!(
            TemplateName::parse("fincelo-alert"),
            Err(TemplateNameError::BadChar { found: '-', .. })
        ));
        assert!(matches!(
            TemplateName::parse("a b"),
            Err(TemplateNameError::BadChar { found: ' ', .. })
        ));
        assert!(TemplateName::parse(&"a".repeat(NAME_MAX)).is_ok());
        assert_eq!(
            TemplateName::parse(&"a".repeat(NAME_MAX + 1)),
            Err(TemplateNameError::TooLong { len: 513, max: 512 })
        );

        let e = load_err(|t| {
            t.insert("name".into(), json!("Fincelo-Usage"));
        });
        assert!(
            matches!(&e, CatalogError::BadName { name, .. } if name == "Fincelo-Usage"),
            "{e:?}"
        );

        let bad: Result<TemplateName, _> = serde_json::from_value(json!("Bad Name"));
        assert!(bad.is_err());
        let good: Result<TemplateName, _> = serde_json::from_value(json!("good_name_2"));
        assert_eq!(
            good.map(|n| n.to_string()).ok().as_deref(),
            Some("good_name_2")
        );
    }

    /// GIVEN a body that starts, or ends, with a variable (bare or before a
    /// full stop) WHEN loaded THEN refused as Meta's INVALID_FORMAT would be.
    #[test]
    fn body_starting_or_ending_with_a_variable_fails() {
        for (body, which) in [
            ("{{1}} used {{2}}% of the {{3}} plan today.", "starts"),
            ("  {{1}} used {{2}}% of the {{3}} plan today.", "starts"),
            ("Alert: {{1}} used {{2}}% of the plan {{3}}", "ends"),
            ("Alert: {{1}} used {{2}}% of the plan {{3}}.", "ends"),
        ] {
            let e = load_err(|t| {
                t.insert("body".into(), json!(body));
            });
            assert!(
                matches!(&e, CatalogError::StartsOrEndsWithVariable { template, which: w } if template == FIRST && *w == which),
                "{body}: {e:?}"
            );
        }
    }

    /// GIVEN two variables with only a space between WHEN loaded THEN refused.
    #[test]
    fn adjacent_variables_fail() {
        let e = load_err(|t| {
            t.insert(
                "body".into(),
                json!("Alert: {{1}} {{2}} of the {{3}} plan today."),
            );
        });
        assert!(
            matches!(
                e,
                CatalogError::AdjacentVariables {
                    first: 1,
                    second: 2,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    /// GIVEN the same name twice WHEN both are `en` THEN refused; WHEN the
    /// languages differ THEN both load.
    #[test]
    fn duplicate_name_and_language_fails() {
        let mut templates: Vec<Value> = REQUIRED.iter().map(|n| entry(n)).collect();
        templates.push(entry(FIRST));
        let e = Catalog::from_yaml(&json!({ "templates": templates }).to_string()).err();
        assert!(
            matches!(e, Some(CatalogError::DuplicateName { .. })),
            "{e:?}"
        );

        let mut spanish = entry(FIRST);
        spanish["language"] = json!("es");
        templates.pop();
        templates.push(spanish);
        let loaded = Catalog::from_yaml(&json!({ "templates": templates }).to_string());
        assert!(loaded.is_ok(), "{:?}", loaded.err());
    }

    /// GIVEN a file without one of the six WHEN loaded THEN refused, naming it.
    #[test]
    fn missing_required_template_fails() {
        let templates: Vec<Value> = REQUIRED[..5].iter().map(|n| entry(n)).collect();
        let e = Catalog::from_yaml(&json!({ "templates": templates }).to_string()).err();
        assert!(
            matches!(&e, Some(CatalogError::MissingTemplate(n)) if n == "fincelo_escalation_notify"),
            "{e:?}"
        );
    }

    /// GIVEN a misspelt key or a bad language WHEN loaded THEN refused.
    #[test]
    fn unknown_keys_and_bad_languages_fail() {
        let e = load_err(|t| {
            if let Some(v) = t.remove("examples") {
                t.insert("exmaples".into(), v);
            }
        });
        assert!(matches!(e, CatalogError::Yaml(_)), "{e:?}");
        for lang in ["EN", "en-US", "", "english"] {
            let e = load_err(|t| {
                t.insert("language".into(), json!(lang));
            });
            assert!(
                matches!(e, CatalogError::BadLanguage { .. }),
                "{lang}: {e:?}"
            );
        }
        assert!(is_language_code("en_US") && is_language_code("fil") && is_language_code("zh_HK"));
    }

    // --- JSON shapes ---------------------------------------------------------

    /// GIVEN a template WHEN its create request is built THEN it has Meta's
    /// keys, and example.body_text is a list holding ONE list of samples.
    #[test]
    fn create_request_has_metas_shape() {
        let t = Catalog::builtin().choose(AlertEvent::UsageThreshold, Health::Average, false);
        let req = t.create_request();
        let keys: Vec<&str> = req
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, ["category", "components", "language", "name"]);
        assert_eq!(req["name"], "fincelo_usage_heads_up");
        assert_eq!(req["language"], "en");
        assert_eq!(req["category"], "UTILITY");

        let body = &req["components"][0];
        assert_eq!(body["type"], "BODY");
        assert_eq!(body["text"], json!(t.body));
        assert_eq!(body["example"]["body_text"], json!([t.examples]));
        assert_eq!(
            body["example"]["body_text"].as_array().map(Vec::len),
            Some(1)
        );
        assert_eq!(
            body["example"]["body_text"][0].as_array().map(Vec::len),
            Some(t.param_count())
        );

        assert_eq!(
            req["components"][1],
            json!({ "type": "FOOTER", "text": t.footer })
        );
        let buttons = &req["components"][2];
        assert_eq!(buttons["type"], "BUTTONS");
        assert_eq!(
            buttons["buttons"][0],
            json!({ "type": "QUICK_REPLY", "text": t.buttons[0] })
        );
        assert_eq!(
            buttons["buttons"].as_array().map(Vec::len),
            Some(t.buttons.len())
        );
    }

    /// GIVEN a template without footer or buttons WHEN its create request is
    /// built THEN only the BODY component is present.
    #[test]
    fn create_request_omits_absent_components() {
        let catalog = Catalog::from_yaml(&file_with(|t| {
            t.remove("footer");
            t.remove("buttons");
        }));
        let req = catalog.map(|c| c.all()[0].create_request()).ok();
        let components = req
            .as_ref()
            .and_then(|r| r["components"].as_array().cloned());
        assert_eq!(components.map(|c| c.len()), Some(1));
    }

    /// GIVEN values in order WHEN the send component is built THEN it is
    /// Meta's `template` object with one text parameter per value, in order.
    #[test]
    fn send_component_with_the_right_count_has_metas_shape() {
        let t = Catalog::builtin().choose(AlertEvent::Escalation, Health::Good, false);
        let values = strings(&["Initech", "CFO", "Two invoices unpaid", "Sam Lee"]);
        let sent = t.send_component(&values);
        assert_eq!(
            sent.ok(),
            Some(json!({
                "name": "fincelo_escalation_notify",
                "language": { "code": "en" },
                "components": [{
                    "type": "body",
                    "parameters": [
                        { "type": "text", "text": "Initech" },
                        { "type": "text", "text": "CFO" },
                        { "type": "text", "text": "Two invoices unpaid" },
                        { "type": "text", "text": "Sam Lee" },
                    ]
                }]
            }))
        );
    }

    /// GIVEN too few or too many values WHEN sending THEN CountMismatch.
    #[test]
    fn send_component_with_the_wrong_count_fails() {
        let t = Catalog::builtin().choose(AlertEvent::Escalation, Health::Good, false);
        for n in [0, 3, 5] {
            let values = vec!["x".to_owned(); n];
            assert_eq!(
                t.send_component(&values).err(),
                Some(ParamError::CountMismatch {
                    template: "fincelo_escalation_notify".into(),
                    expected: 4,
                    got: n,
                })
            );
        }
    }

    /// GIVEN a value Meta rejects (empty, blank, too long, newline, tab, five
    /// spaces) WHEN sending THEN Invalid with its 1-based index; four spaces
    /// and exactly 1024 characters pass.
    #[test]
    fn send_component_refuses_values_meta_rejects() {
        let t = Catalog::builtin().choose(AlertEvent::Escalation, Health::Good, false);
        let with_third =
            |v: String| vec!["Initech".to_owned(), "CFO".to_owned(), v, "Sam".to_owned()];
        let cases = [
            (String::new(), ParamProblem::Empty),
            ("   ".to_owned(), ParamProblem::Empty),
            (
                "x".repeat(PARAM_MAX + 1),
                ParamProblem::TooLong {
                    len: 1025,
                    max: 1024,
                },
            ),
            ("two\nlines".to_owned(), ParamProblem::Newline),
            ("a\ttab".to_owned(), ParamProblem::Tab),
            (
                "five     spaces".to_owned(),
                ParamProblem::TooManySpaces { run: 5, max: 4 },
            ),
        ];
        for (value, reason) in cases {
            assert_eq!(
                t.send_component(&with_third(value)).err(),
                Some(ParamError::Invalid {
                    template: "fincelo_escalation_notify".into(),
                    index: 3,
                    reason,
                })
            );
        }
        assert!(t
            .send_component(&with_third("four    spaces".into()))
            .is_ok());
        assert!(t.send_component(&with_third("x".repeat(PARAM_MAX))).is_ok());
    }

    /// GIVEN values WHEN rendered THEN each placeholder takes the value of its
    /// number, in order, and the rest of the body is unchanged.
    #[test]
    fn render_fills_in_order() {
        let catalog = Catalog::from_yaml(&file_with(|_| {}));
        let t = catalog.as_ref().map(|c| &c.all()[0]);
        let rendered = t.map(|t| t.render(&strings(&["Acme", "92", "Growth"])));
        assert_eq!(
            rendered.ok().and_then(Result::ok).as_deref(),
            Some("Alert: Acme used 92% of the Growth plan today.")
        );
        let wrong = t.map(|t| t.render(&strings(&["Acme"])));
        assert!(matches!(
            wrong,
            Ok(Err(ParamError::CountMismatch {
                expected: 3,
                got: 1,
                ..
            }))
        ));
    }

    /// GIVEN the enums WHEN (de)serialised THEN they use the wire names the
    /// lead's handlers and Meta expect.
    #[test]
    fn enums_use_the_documented_wire_names() {
        assert_eq!(json!(Category::Utility), json!("UTILITY"));
        assert_eq!(json!(Category::Marketing), json!("MARKETING"));
        assert_eq!(json!(AlertEvent::OverdueInvoice), json!("overdue_invoice"));
        assert_eq!(json!(AlertEvent::UsageThreshold), json!("usage_threshold"));
        assert_eq!(json!(Health::Critical), json!("critical"));
        let h: Result<Health, _> = serde_json::from_value(json!("platinum"));
        assert_eq!(h.ok(), Some(Health::Platinum));
        let e: Result<AlertEvent, _> = serde_json::from_value(json!("escalation"));
        assert_eq!(e.ok(), Some(AlertEvent::Escalation));
        assert!(!Health::Average.at_risk() && Health::Poor.at_risk() && Health::Critical.at_risk());
    }
}
