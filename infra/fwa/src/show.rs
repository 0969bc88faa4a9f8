//! What `fwa` prints for people: plain words and ISO-8601 UTC times
//! ([`fincelo::admin::when::iso8601`]), from the admin API's JSON answers.
//! `--json` prints those answers instead, for programs (the journey reads
//! them). Each function takes one answer and returns its text.

use fincelo::admin::when::iso8601;
use serde_json::Value;

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn time(v: &Value) -> String {
    v.as_i64().map(iso8601).unwrap_or_else(|| "-".into())
}

/// `GET .../messages/{key}`: the alert's state, then its events in order.
pub fn timeline(v: &Value) -> String {
    let mut head = format!(
        "alert {} (tenant {}): {}",
        s(&v["idempotency_key"]),
        s(&v["tenant_id"]),
        v["state"]
            .as_str()
            .unwrap_or("no ledger entry (only Meta's statuses)")
    );
    if let Some(d) = v["delivery_status"].as_str() {
        head.push_str(&format!(", Meta says {d}"));
    }
    let mut out = vec![head];
    for e in v["events"].as_array().into_iter().flatten() {
        out.push(format!("  {}  {}", time(&e["at"]), event(e)));
    }
    out.join("\n")
}

fn event(e: &Value) -> String {
    let reason = e["reason"].as_str().unwrap_or("no reason recorded");
    match s(&e["event"]) {
        "queued" => "queued (first seen by the sender)".into(),
        "waiting" => format!(
            "waiting for template {} to be approved (parked if still not approved at {})",
            s(&e["template"]),
            time(&e["until"])
        ),
        "redriven" => format!(
            "redriven by an operator (it had been parked: {})",
            e["was"].as_str().unwrap_or("reason not recorded")
        ),
        "sent" => {
            let how = match (e["mode"].as_str(), e["template"].as_str()) {
                (Some("template"), Some(t)) => format!("as template {t}"),
                (Some("free_form"), _) => "as free-form text (the CSM's window was open)".into(),
                _ => "(Meta's status)".into(),
            };
            format!("sent {how}, wamid {}", s(&e["wamid"]))
        }
        "response" => {
            let what = match s(&e["action"]) {
                "acknowledge" => "acknowledged".to_string(),
                "snooze" => format!("snoozed it until {}", time(&e["snooze_until"])),
                "escalate" => "escalated it".into(),
                "call_me" => "asked for a call".into(),
                "reply" => "replied to it (the text went to Fincelo in the event)".into(),
                other => other.to_string(),
            };
            format!(
                "{} {what} (message {})",
                who(&e["csm"]),
                s(&e["message_id"])
            )
        }
        "delivered" => "delivered to the CSM's phone".into(),
        "read" => "read by the CSM".into(),
        "failed" => format!("failed at Meta: {}", meta_errors(&e["errors"])),
        "parked" => format!("parked: {reason}"),
        "expired" => format!("expired, not sent: {reason}"),
        "retry" => format!(
            "will be retried (attempt {} failed): {reason}",
            e["attempts"]
        ),
        "ambiguous" => format!(
            "in doubt (attempt {} may have reached Meta; decided by Meta's status): {reason}",
            e["attempts"]
        ),
        other => other.to_string(),
    }
}

/// Who answered: the roster CSM, else their masked number, else their
/// BSUID or username.
fn who(csm: &Value) -> String {
    if let Some(id) = csm["csm_id"].as_str() {
        return format!("CSM {id}");
    }
    if let Some(p) = csm["phone"]
        .as_str()
        .and_then(|p| fincelo::phone::E164::parse(p).ok())
    {
        return format!("{} (not on the roster)", p.masked());
    }
    match (csm["username"].as_str(), csm["user_id"].as_str()) {
        (Some(u), _) => format!("@{u} (not on the roster)"),
        (None, Some(id)) => format!("user {id} (not on the roster)"),
        _ => "someone unnamed".into(),
    }
}

fn meta_errors(errors: &Value) -> String {
    let list: Vec<String> = errors
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            format!(
                "{} {}",
                e["code"],
                e["title"].as_str().or(e["message"].as_str()).unwrap_or("")
            )
            .trim()
            .to_string()
        })
        .collect();
    if list.is_empty() {
        "no error given".into()
    } else {
        list.join("; ")
    }
}

/// `GET .../channel`: the connection, templates, waiting and parked
/// alerts, the roster.
pub fn status(v: &Value) -> String {
    let mut out = vec![format!("tenant {}", s(&v["tenant_id"]))];
    let name = match (
        v["display_phone_number"].as_str(),
        v["verified_name"].as_str(),
    ) {
        (Some(d), Some(n)) => format!("{d} ({n}), "),
        (Some(d), None) => format!("{d}, "),
        _ => String::new(),
    };
    out.push(format!(
        "  WhatsApp number   {name}phone number id {}, WABA {}",
        s(&v["phone_number_id"]),
        s(&v["waba_id"])
    ));
    out.push(format!("  channel saved     {}", time(&v["updated_at"])));
    out.push(format!(
        "  last webhook      {}",
        v["last_webhook_at"]
            .as_i64()
            .map(iso8601)
            .unwrap_or_else(|| "none yet".into())
    ));
    out.push(format!(
        "  waiting alerts    {} (held until their template is approved)",
        v["waiting_alerts"]
    ));
    let dlq = &v["dlq"];
    let last = dlq["last_parked_at"]
        .as_i64()
        .map(|t| format!(", last at {}", iso8601(t)))
        .unwrap_or_default();
    out.push(format!(
        "  parked alerts     {} in the last {} days{last} (see `fwa parked`)",
        dlq["parked"], dlq["window_days"]
    ));
    let held = &v["sends_held"];
    if held.is_object() {
        out.push(format!(
            "  SENDS HELD        since {}: Meta {} ({}); the next alert probes at {}",
            time(&held["since"]),
            held["meta_code"],
            s(&held["reason"]),
            time(&held["next_probe_at"]),
        ));
    }
    out.extend(account_lines(&v["account"]));
    out.push(format!(
        "  Graph API         {}",
        s(&v["graph_api"]["version"])
    ));
    if let Some(w) = v["graph_api"]["warning"].as_str() {
        out.push(format!("  WARNING           {w}"));
    }
    let templates = v["templates"].as_array().cloned().unwrap_or_default();
    out.push(format!("templates ({}):", templates.len()));
    if templates.is_empty() {
        out.push("  none submitted yet (`fwa submit-templates`)".into());
    }
    for t in &templates {
        let mut line = format!(
            "  {:<30} {:<5} {:<9}",
            s(&t["name"]),
            s(&t["language"]),
            s(&t["status"])
        );
        if let Some(r) = t["reason"].as_str().filter(|r| *r != "NONE") {
            line.push_str(&format!(" reason {r}"));
        }
        if let Some(q) = t["quality"].as_str() {
            line.push_str(&format!(" quality {q}"));
        }
        // 0: the status was recorded at submission, before Meta's first word.
        if let Some(ts) = t["status_ts"].as_i64().filter(|ts| *ts > 0) {
            line.push_str(&format!(" since {}", iso8601(ts)));
        }
        out.push(line.trim_end().to_string());
    }
    out.push(csm_lines(&v["csms"]));
    out.join("\n")
}

/// The status's `account`: what Meta's account webhooks last said.
fn account_lines(a: &Value) -> Vec<String> {
    let since = |v: &Value| {
        v["at"]
            .as_i64()
            .map(|t| format!(" since {}", iso8601(t)))
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    let l = &a["messaging_limit"];
    out.push(if l.is_object() {
        let mut line = format!(
            "  messaging limit   {}",
            l["limit"].as_str().unwrap_or("not given")
        );
        if let Some(old) = l["old_limit"].as_str() {
            line.push_str(&format!(" (was {old})"));
        }
        if let Some(e) = l["event"].as_str() {
            line.push_str(&format!(", {e}"));
        }
        line + &since(l)
    } else {
        "  messaging limit   not reported by Meta yet".into()
    });
    let q = &a["quality"];
    if q.is_object() {
        let said = match q["event"].as_str() {
            Some("FLAGGED") => "FLAGGED: Meta rates the number's quality low",
            Some("UNFLAGGED") => "UNFLAGGED: the number's quality recovered",
            Some(other) => other,
            None => "reported",
        };
        out.push(format!("  number quality    {said}{}", since(q)));
    }
    let st = &a["standing"];
    if st.is_object() {
        let restrictions: Vec<String> = st["restrictions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| match r["expiration"].as_str() {
                Some(until) => format!("{} until {until}", s(&r["type"])),
                None => s(&r["type"]).to_string(),
            })
            .collect();
        let mut line = format!("  ACCOUNT           {}", s(&st["event"]));
        if !restrictions.is_empty() {
            line.push_str(&format!(": {}", restrictions.join(", ")));
        }
        for (key, label) in [("violation_type", "violation"), ("ban_state", "ban")] {
            if let Some(x) = st[key].as_str() {
                line.push_str(&format!(", {label} {x}"));
            }
        }
        out.push(line + &since(st));
    }
    out
}

/// The roster (`GET .../csms`, and the status's `csms`).
pub fn csm_lines(csms: &Value) -> String {
    let list = csms.as_array().cloned().unwrap_or_default();
    let mut out = vec![format!("CSMs ({}):", list.len())];
    if list.is_empty() {
        out.push("  none yet (`fwa csm add CSM_ID +E164`)".into());
    }
    for c in &list {
        let flag = if c["undeliverable"] == true {
            "  undeliverable: Meta answered 131026 for this number"
        } else {
            ""
        };
        out.push(format!(
            "  {:<20} {}{flag}",
            s(&c["csm_id"]),
            s(&c["whatsapp_number"])
        ));
    }
    out.join("\n")
}

/// `PUT .../csms/{csm_id}`.
pub fn csm_saved(v: &Value) -> String {
    let what = if v["changed"] == true {
        "saved"
    } else {
        "unchanged"
    };
    let mut line = format!(
        "CSM {} {what}: {}",
        s(&v["csm_id"]),
        s(&v["whatsapp_number"])
    );
    if v["undeliverable"] == true {
        line.push_str(" (flagged undeliverable: Meta answered 131026 for this number)");
    }
    line
}

/// `GET .../parked`.
pub fn parked(v: &Value) -> String {
    let list = v["parked"].as_array().cloned().unwrap_or_default();
    let tenant = s(&v["tenant_id"]);
    let mut out = Vec::new();
    if list.is_empty() {
        out.push(format!("no parked alerts for tenant {tenant}"));
    } else {
        out.push(format!(
            "{} parked alert(s) for tenant {tenant}, newest first:",
            list.len()
        ));
    }
    for p in &list {
        let meta = p["meta_code"]
            .as_i64()
            .map(|c| format!(" (Meta {c})"))
            .unwrap_or_default();
        out.push(format!(
            "  {}  {}  {}{meta}: {}",
            s(&p["parked_at"]),
            s(&p["idempotency_key"]),
            s(&p["reason"]),
            s(&p["detail"])
        ));
    }
    out.push("After the fix, `fwa redrive KEY` sends one again. Requests too broken to name their tenant are only in the send DLQ (docs/operating.md, Parked alerts).".into());
    out.join("\n")
}

/// One line's figures of `GET .../costs`: messages, billable, cost.
fn cost_figures(v: &Value, currency: &str) -> String {
    let mut line = format!(
        "{} delivered, {} billable, {currency} {:.4}",
        v["messages"].as_u64().unwrap_or(0),
        v["billable"].as_u64().unwrap_or(0),
        v["estimated_cost"].as_f64().unwrap_or(0.0)
    );
    if let Some(n) = v["unpriced"].as_u64().filter(|n| *n > 0) {
        line.push_str(&format!(" ({n} billable without a price on the rate card)"));
    }
    line
}

/// `GET .../costs`.
pub fn costs(v: &Value) -> String {
    let currency = s(&v["currency"]);
    let mut out = vec![format!(
        "tenant {}, {}: {}",
        s(&v["tenant_id"]),
        s(&v["month"]),
        cost_figures(&v["totals"], currency)
    )];
    for c in v["totals"]["categories"].as_array().into_iter().flatten() {
        out.push(format!(
            "  {}: {}",
            s(&c["category"]),
            cost_figures(c, currency)
        ));
    }
    let days = v["days"].as_array().cloned().unwrap_or_default();
    if days.is_empty() {
        out.push("no delivered messages counted this month".into());
    }
    for d in &days {
        out.push(format!("{}: {}", s(&d["day"]), cost_figures(d, currency)));
        for c in d["categories"].as_array().into_iter().flatten() {
            out.push(format!(
                "  {} ({}): {}",
                s(&c["category"]),
                s(&c["type"]),
                cost_figures(c, currency)
            ));
        }
    }
    out.push(format!(
        "Estimates from the rate card of {} ({}); Meta's invoice is the truth.",
        s(&v["rate_card"]["as_of"]),
        s(&v["rate_card"]["source"])
    ));
    out.join("\n")
}

/// `POST .../redrive`.
pub fn redriven(v: &Value) -> String {
    let mut line = format!(
        "alert {} redriven at {}: back on the send queue",
        s(&v["idempotency_key"]),
        s(&v["redriven_at"])
    );
    if let Some(was) = v["was"].as_str() {
        line.push_str(&format!(" (it had been parked: {was})"));
    }
    if v["resumed"] == true {
        line.push_str("; this finished a redrive that had stopped half way");
    }
    line.push_str(&format!(
        "\nfollow it with `fwa timeline {}`",
        s(&v["idempotency_key"])
    ));
    line
}

/// `PUT .../channel`.
pub fn channel_saved(v: &Value, created: bool) -> String {
    let name = match (
        v["display_phone_number"].as_str(),
        v["verified_name"].as_str(),
    ) {
        (Some(d), Some(n)) => format!("{d} ({n})"),
        (Some(d), None) => d.to_string(),
        _ => "its number".into(),
    };
    format!(
        "tenant {} {}: Meta accepted the token for {name}, phone number id {}, WABA {}.\nThe running functions use the new secrets within {} s. Next: Meta's Verify and Save with this verify token.",
        s(&v["tenant_id"]),
        if created { "connected" } else { "updated" },
        s(&v["phone_number_id"]),
        s(&v["waba_id"]),
        v["secrets_picked_up_within_secs"]
    )
}

/// The template route's `submit` answer.
pub fn submitted(v: &Value) -> String {
    let mut out = vec![format!(
        "templates submitted for tenant {}:",
        s(&v["tenant_id"])
    )];
    for r in v["results"].as_array().into_iter().flatten() {
        let outcome = match s(&r["outcome"]) {
            "created" => "submitted".to_string(),
            "already_there" => "already at Meta".to_string(),
            other => other.to_string(),
        };
        let mut line = format!("  {:<30} {:<5} {outcome}", s(&r["name"]), s(&r["language"]));
        if let Some(st) = r["status"].as_str() {
            line.push_str(&format!(", {st}"));
        }
        if let Some(why) = r["reason"].as_str() {
            line.push_str(&format!(": {why}"));
        }
        out.push(line);
    }
    out.push("Meta's review takes 24 to 72 hours; alerts enqueued meanwhile wait for it (`fwa status` counts them).".into());
    out.join("\n")
}

/// The local runner's clock (`/_local/clock`).
pub fn clock(v: &Value) -> String {
    let ahead = v["ahead_secs"].as_u64().unwrap_or(0);
    let mut line = format!(
        "local stack clock: {} ({} h {:02} min ahead of this machine)",
        s(&v["now"]),
        ahead / 3600,
        (ahead % 3600) / 60
    );
    if v["sweep_fired"] == true {
        line.push_str("; the 5-minute sweep fired");
    }
    line
}

/// A CSM's window, from the table.
pub fn window(csm_masked: &str, expires_at: Option<i64>, now: i64) -> String {
    match expires_at {
        Some(at) if at > now => {
            let left = at - now;
            format!(
                "CSM {csm_masked}: window open until {} ({} h {:02} min left): alerts with text go free-form",
                iso8601(at),
                left / 3600,
                (left % 3600) / 60
            )
        }
        Some(at) => format!(
            "CSM {csm_masked}: window closed at {}: alerts go as templates",
            iso8601(at)
        ),
        None => {
            format!("CSM {csm_masked}: no window (the CSM has not written): alerts go as templates")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A timeline names who answered the alert, what and when, in words
    /// and ISO-8601 UTC times.
    #[test]
    fn the_timeline_shows_who_answered_what_and_when() {
        let v = json!({
            "tenant_id": "acme", "idempotency_key": "k1", "state": "sent",
            "events": [
                {"event": "response", "at": 1_764_496_800, "action": "snooze",
                 "snooze_until": 1_764_756_000, "message_id": "wamid.A",
                 "csm": {"csm_id": "csm-7", "phone": "+919876543210"}},
                {"event": "response", "at": 1_764_496_900, "action": "acknowledge",
                 "message_id": "wamid.B", "csm": {"csm_id": null, "phone": "+919876543210"}},
            ],
        });
        let out = timeline(&v);
        assert!(
            out.contains("2025-11-30T10:00:00Z  CSM csm-7 snoozed it until 2025-12-03T10:00:00Z (message wamid.A)"),
            "{out}"
        );
        assert!(
            out.contains("+91******3210 (not on the roster) acknowledged (message wamid.B)"),
            "{out}"
        );
    }

    /// The status shows the Graph version, its warning and a send hold in
    /// plain words, and nothing of them when there is nothing to say.
    #[test]
    fn the_status_warns_of_an_expiring_graph_version_and_a_send_hold() {
        let mut v = json!({
            "tenant_id": "acme", "waiting_alerts": 0,
            "dlq": {"parked": 0, "window_days": 14},
            "graph_api": {"version": "v26.0", "warning": null},
            "sends_held": null, "templates": [], "csms": [],
        });
        let quiet = status(&v);
        assert!(quiet.contains("Graph API         v26.0"), "{quiet}");
        assert!(
            !quiet.contains("WARNING") && !quiet.contains("SENDS HELD"),
            "{quiet}"
        );
        v["graph_api"] = json!({"version": "v25.0", "warning": "Graph API version v25.0 expires on 2028-07-29 (in 90 days)"});
        v["sends_held"] = json!({"since": 1_764_072_000, "meta_code": 131042, "reason": "payment_issue", "next_probe_at": 1_764_072_900});
        let loud = status(&v);
        assert!(
            loud.contains(
                "WARNING           Graph API version v25.0 expires on 2028-07-29 (in 90 days)"
            ),
            "{loud}"
        );
        assert!(
            loud.contains("SENDS HELD        since 2025-11-25T12:00:00Z: Meta 131042 (payment_issue); the next alert probes at 2025-11-25T12:15:00Z"),
            "{loud}"
        );
    }

    /// `fwa costs` reads per day and category in words, with the currency,
    /// what the card could not price, and where the prices come from.
    #[test]
    fn costs_read_per_day_and_category_with_the_rate_cards_source() {
        let v = json!({
            "tenant_id": "acme", "month": "2026-11", "currency": "USD",
            "rate_card": {"source": "https://example.com/card", "as_of": "2026-11-30"},
            "totals": {"messages": 3, "billable": 2, "unpriced": 1, "estimated_cost": 0.0017,
                       "categories": [{"category": "utility", "messages": 3, "billable": 2, "unpriced": 1, "estimated_cost": 0.0017}]},
            "days": [{"day": "2026-11-30", "messages": 3, "billable": 2, "unpriced": 1, "estimated_cost": 0.0017,
                      "categories": [{"category": "utility", "type": "regular", "messages": 2, "billable": 2, "unpriced": 1, "estimated_cost": 0.0017, "countries": {"91": 1, "unknown": 1}}]}],
        });
        let out = costs(&v);
        assert!(
            out.starts_with("tenant acme, 2026-11: 3 delivered, 2 billable, USD 0.0017 (1 billable without a price on the rate card)"),
            "{out}"
        );
        assert!(out.contains("2026-11-30: 3 delivered"), "{out}");
        assert!(
            out.contains("  utility (regular): 2 delivered, 2 billable, USD 0.0017"),
            "{out}"
        );
        assert!(
            out.contains("rate card of 2026-11-30 (https://example.com/card)"),
            "{out}"
        );
    }

    /// The status names the messaging limit, a quality flag and a
    /// restriction in words, with Meta's times.
    #[test]
    fn the_status_shows_the_accounts_limit_quality_and_restrictions() {
        let v = json!({
            "tenant_id": "acme", "waiting_alerts": 0,
            "dlq": {"parked": 0, "window_days": 14},
            "graph_api": {"version": "v26.0", "warning": null},
            "sends_held": null, "templates": [], "csms": [],
            "account": {
                "messaging_limit": {"limit": "TIER_2K", "old_limit": "TIER_250", "event": "UPGRADE", "at": 1_764_496_800},
                "quality": {"event": "FLAGGED", "at": 1_764_496_800},
                "standing": {"event": "ACCOUNT_RESTRICTION", "restrictions": [{"type": "RESTRICTED_BIZ_INITIATED_MESSAGING", "expiration": "2026-12-19T13:59:20+0000"}], "at": 1_764_496_800},
            },
        });
        let out = status(&v);
        assert!(
            out.contains(
                "messaging limit   TIER_2K (was TIER_250), UPGRADE since 2025-11-30T10:00:00Z"
            ),
            "{out}"
        );
        assert!(out.contains("number quality    FLAGGED: Meta rates the number's quality low since 2025-11-30T10:00:00Z"), "{out}");
        assert!(out.contains("ACCOUNT           ACCOUNT_RESTRICTION: RESTRICTED_BIZ_INITIATED_MESSAGING until 2026-12-19T13:59:20+0000 since 2025-11-30T10:00:00Z"), "{out}");
        let quiet = status(
            &json!({"tenant_id": "acme", "account": {"messaging_limit": null, "quality": null, "standing": null}}),
        );
        assert!(
            quiet.contains("messaging limit   not reported by Meta yet"),
            "{quiet}"
        );
        assert!(!quiet.contains("ACCOUNT "), "{quiet}");
    }
}
