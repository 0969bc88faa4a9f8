//! Who a request goes to: the roster entry or alias that names the CSM, and
//! whether their number is flagged undeliverable, from a short cache or in
//! one read for a batch's misses.

use std::collections::HashMap;
use std::time::Duration;

use super::request::SendRequest;
use super::{Sender, SenderError};
use crate::addressing::{addressee_from, Addressee, Unaddressable};
use crate::store::Named;

impl Sender {
    /// Who `req` goes to (see [`Sender::reach_all`]).
    pub(super) async fn reach(&self, req: &SendRequest) -> Result<Reached, SenderError> {
        let mut one = self.reach_all(std::slice::from_ref(req)).await?;
        Ok(one
            .pop()
            .unwrap_or(Reached::Not(Unaddressable::NoRecipient)))
    }

    /// Who each request goes to: the roster entry or alias that names them,
    /// and whether their number is flagged undeliverable. From a cache of
    /// `ADDRESSEE_TTL`, else in one read for all the misses.
    pub(super) async fn reach_all(
        &self,
        requests: &[SendRequest],
    ) -> Result<Vec<Reached>, SenderError> {
        let named: Vec<Named> = requests.iter().map(named).collect();
        let mut out: Vec<Option<Reached>> = named.iter().map(|n| self.addressees.get(n)).collect();
        let misses: Vec<Named> = named
            .iter()
            .zip(&out)
            .filter(|(_, hit)| hit.is_none())
            .map(|(n, _)| n.clone())
            .collect();
        if !misses.is_empty() {
            let known = self.app.store.lookup_recipients(&misses).await?;
            let mut fresh: HashMap<Named, Reached> = HashMap::new();
            for (n, k) in misses.into_iter().zip(known) {
                let reached = match addressee_from(&n, &k) {
                    Ok((to, false)) => Reached::To(to),
                    Ok((to, true)) => Reached::Undeliverable(to),
                    Err(why) => Reached::Not(why),
                };
                // Not someone sent to by BSUID: their id can change at any
                // time (`user_id_update`), and Meta refuses the old one, so
                // each request reads where it leads now.
                let by_bsuid = matches!(&reached, Reached::To(to) if to.user_id.is_some());
                if !by_bsuid {
                    self.addressees
                        .put(n.clone(), reached.clone(), ADDRESSEE_TTL);
                }
                fresh.insert(n, reached);
            }
            for (slot, n) in out.iter_mut().zip(&named) {
                if slot.is_none() {
                    *slot = fresh.get(n).cloned();
                }
            }
        }
        Ok(out
            .into_iter()
            .map(|r| r.unwrap_or(Reached::Not(Unaddressable::NoRecipient)))
            .collect())
    }
}

/// A request's recipient as it names them.
pub(super) fn named(r: &SendRequest) -> Named {
    Named {
        tenant: r.tenant_id.clone(),
        phone: r.phone.clone(),
        csm_id: r.csm_id.clone(),
        user_id: r.user_id.clone(),
    }
}

/// Who a request goes to, or why it cannot go.
#[derive(Debug, Clone)]
pub(super) enum Reached {
    To(Addressee),
    /// Meta answered 131026 for the number: not sent to until it changes.
    Undeliverable(Addressee),
    Not(Unaddressable),
}

/// How long who a request goes to (the roster's number, an alias, the
/// undeliverable flag) is trusted from the cache.
pub(super) const ADDRESSEE_TTL: Duration = Duration::from_secs(60);
