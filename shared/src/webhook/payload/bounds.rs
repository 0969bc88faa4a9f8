//! What one body may cost before its signature is checked.
//!
//! # Why
//! Every POST is read before it can be authenticated (its ids name the
//! tenant, and so the app secret), so anyone who knows the URL chooses what
//! the reader works on. The function has 128 MB and a 10 s timeout; a
//! reader whose time or memory grows faster than the body, or with the
//! number of JSON objects in it rather than with what it keeps, can be
//! starved by one request. The body itself is capped by
//! `WEBHOOK_MAX_BODY_BYTES` (3 MiB by default, Meta's own maximum:
//! "Webhooks payloads can be up to 3MB",
//! <https://developers.facebook.com/docs/whatsapp/cloud-api/guides/set-up-webhooks>).
//!
//! # The bounds
//! * **Lists.** Meta aggregates webhook updates "in a batch with a maximum of
//!   1000 updates" (<https://developers.facebook.com/docs/graph-api/webhooks/getting-started>,
//!   and the WhatsApp webhooks overview,
//!   <https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/overview>).
//!   So a body holds at most [`MAX_PER_LIST_KIND`] of each kind of list item
//!   the reader keeps (entries, changes, messages, statuses, contacts,
//!   errors, identity updates, restrictions), counted over the whole body.
//!   The count is made while reading: the first item over a cap stops the
//!   read and the body is refused ([`super::PayloadError::TooMany`], HTTP
//!   400). Refused rather than cut short, because a body over a cap is not
//!   one Meta sends, and reading the rest would be work for nobody; a
//!   partial answer would look like a processed body.
//! * **Ids.** The routing ids are validated with their newtypes' rules
//!   (`WabaId`, `PhoneNumberId`: 1 to 32 digits) before anything is looked
//!   up; an id that fails names no tenant. Distinct ids are kept in
//!   [`Distinct`], constant time per id.
//! * **Memory** is what is kept: the typed items (at most the caps above),
//!   the strings that had escapes (decoded once, at most the body's size),
//!   and the answer. Parts the reader does not use are validated and
//!   dropped as they are read, without allocating, whatever their shape.
//! * **Time** is one pass over the bytes, plus constant work per kept item
//!   (contacts are indexed once per change, not scanned per message).
//! * **Depth** is serde_json's recursion limit (128): deeper is invalid JSON.
//!
//! `tests/bounds/` measures these on the worst bodies we can build.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashSet;

/// The most items of one kind a body may carry: Meta's documented batch
/// maximum (1000 updates per POST), so no body of Meta's reaches it.
pub const MAX_PER_LIST_KIND: usize = 1000;

/// The kinds of list the reader keeps, each capped at [`MAX_PER_LIST_KIND`]
/// over the whole body. The names are what a refusal says.
pub(super) const ENTRIES: usize = 0;
pub(super) const CHANGES: usize = 1;
pub(super) const MESSAGES: usize = 2;
pub(super) const STATUSES: usize = 3;
pub(super) const CONTACTS: usize = 4;
pub(super) const ERRORS: usize = 5;
pub(super) const IDENTITY_UPDATES: usize = 6;
pub(super) const RESTRICTIONS: usize = 7;
const KINDS: usize = 8;
const KIND_NAMES: [&str; KINDS] = [
    "entries",
    "changes",
    "messages",
    "statuses",
    "contacts",
    "errors",
    "user id updates",
    "restrictions",
];

/// The running count of one body's list items; the first item over a cap
/// is refused, and the kind recorded for the error.
#[derive(Default)]
pub(super) struct Budget {
    counts: [Cell<usize>; KINDS],
    exceeded: Cell<Option<usize>>,
}

impl Budget {
    /// Takes one item of `kind`; false (and the kind recorded) when the body
    /// already holds the most it may.
    pub(super) fn take(&self, kind: usize) -> bool {
        let n = self.counts[kind].get();
        if n >= MAX_PER_LIST_KIND {
            self.exceeded.set(Some(kind));
            return false;
        }
        self.counts[kind].set(n + 1);
        true
    }

    /// The kind of list whose cap stopped the read, if one did.
    pub(super) fn exceeded(&self) -> Option<&'static str> {
        self.exceeded.get().map(|k| KIND_NAMES[k])
    }
}

/// Distinct strings in first-seen order, constant time per insert: a short
/// list is scanned (a body names one WABA and one number), a longer one is
/// indexed by a hash set built when it grows past [`Distinct::SCAN`].
#[derive(Debug, Default)]
pub(super) struct Distinct<'a> {
    list: Vec<Cow<'a, str>>,
    index: Option<HashSet<String>>,
}

impl<'a> Distinct<'a> {
    /// Up to this many, a scan is cheaper than hashing.
    const SCAN: usize = 8;

    pub(super) fn push(&mut self, s: Cow<'a, str>) {
        match &mut self.index {
            Some(index) => {
                if index.insert(s.to_string()) {
                    self.list.push(s);
                }
            }
            None => {
                if self.list.contains(&s) {
                    return;
                }
                self.list.push(s);
                if self.list.len() > Self::SCAN {
                    self.index = Some(self.list.iter().map(|x| x.to_string()).collect());
                }
            }
        }
    }

    pub(super) fn into_vec(self) -> Vec<Cow<'a, str>> {
        self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The budget refuses the item over the cap, and says which kind.
    #[test]
    fn the_item_over_a_cap_is_refused_and_named() {
        let b = Budget::default();
        for _ in 0..MAX_PER_LIST_KIND {
            assert!(b.take(MESSAGES));
        }
        assert_eq!(b.exceeded(), None);
        assert!(b.take(STATUSES), "each kind has its own count");
        assert!(!b.take(MESSAGES));
        assert_eq!(b.exceeded(), Some("messages"));
    }

    /// Distinct keeps first-seen order through the switch to the index.
    #[test]
    fn distinct_keeps_order_past_the_scan_length() {
        let mut d = Distinct::default();
        for i in (0..20).chain(0..20).chain([3, 19, 20]) {
            d.push(Cow::Owned(i.to_string()));
        }
        let want: Vec<String> = (0..=20).map(|i| i.to_string()).collect();
        assert_eq!(d.into_vec(), want);
    }
}
