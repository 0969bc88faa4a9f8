//! [`SandboxClient`]: a typed client of the `/_sandbox/*` control endpoints,
//! usable against any sandbox base URL (in-process or `meta-sandbox --listen`).

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::control_accounts::{AccountEvent, AccountEventResult};
use crate::knobs::Knobs;
use crate::model::{
    AccountSpec, AccountView, DataList, DecisionExtras, DecisionResult, InboundMessage,
    InboundRequest, InboundResult, MessageRecord, ReadRecord, ResetRequest, Stats,
    TemplateDecision, TemplateRecord, TenantSpec, TenantView, TokenRotation, UserIdChange,
    UserIdChangeResult, UserSpec, UserView, WebhookLogEntry,
};

/// Why a control call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("control request failed to send")]
    Transport(#[source] reqwest::Error),
    #[error("sandbox answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("sandbox answer could not be decoded")]
    Decode(#[source] reqwest::Error),
    #[error("control request could not be encoded")]
    Encode(#[source] serde_json::Error),
}

/// Typed access to the control endpoints.
#[derive(Debug, Clone)]
pub struct SandboxClient {
    http: reqwest::Client,
    base_url: String,
}

impl SandboxClient {
    /// A client for the sandbox at `base_url` (e.g. `http://127.0.0.1:8788`).
    pub fn new(base_url: impl Into<String>) -> Self {
        SandboxClient {
            http: reqwest::Client::new(),
            base_url: base_url.into().trim_end_matches('/').to_string(),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    async fn send<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let resp = req.send().await.map_err(ClientError::Transport)?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(ClientError::Status {
                status: status.as_u16(),
                body,
            });
        }
        resp.json::<T>().await.map_err(ClientError::Decode)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.send(self.http.post(self.url(path)).json(body)).await
    }

    /// `POST /_sandbox/tenants`: registers or replaces a tenant.
    pub async fn register_tenant(&self, spec: &TenantSpec) -> Result<TenantView, ClientError> {
        self.post("/_sandbox/tenants", spec).await
    }

    /// `POST /_sandbox/tokens`: the old token stops working at once.
    pub async fn rotate_token(
        &self,
        phone_number_id: &str,
        access_token: &str,
    ) -> Result<Value, ClientError> {
        let body = TokenRotation {
            phone_number_id: phone_number_id.into(),
            access_token: access_token.into(),
        };
        self.post("/_sandbox/tokens", &body).await
    }

    /// `POST /_sandbox/inbound`: a CSM message; waits for its webhook delivery.
    pub async fn inbound(&self, req: &InboundRequest) -> Result<InboundResult, ClientError> {
        self.post("/_sandbox/inbound", req).await
    }

    /// `POST /_sandbox/inbound` with a button tap, an interactive reply, a
    /// quoted reply or a registered user's identity.
    pub async fn inbound_message(&self, m: &InboundMessage) -> Result<InboundResult, ClientError> {
        self.post("/_sandbox/inbound", m).await
    }

    /// `POST /_sandbox/users`: registers (or replaces) a WhatsApp user.
    pub async fn register_user(&self, spec: &UserSpec) -> Result<UserView, ClientError> {
        self.post("/_sandbox/users", spec).await
    }

    /// `GET /_sandbox/users`.
    pub async fn users(&self) -> Result<Vec<UserView>, ClientError> {
        let list: DataList<UserView> = self
            .send(self.http.get(self.url("/_sandbox/users")))
            .await?;
        Ok(list.data)
    }

    /// `POST /_sandbox/users/change_id`: the user gets a new BSUID; Meta's webhooks follow.
    pub async fn change_user_id(
        &self,
        c: &UserIdChange,
    ) -> Result<UserIdChangeResult, ClientError> {
        self.post("/_sandbox/users/change_id", c).await
    }

    /// `POST /_sandbox/accounts`: sets some of a WABA's conditions.
    pub async fn set_account(&self, a: &AccountSpec) -> Result<AccountView, ClientError> {
        self.post("/_sandbox/accounts", a).await
    }

    /// `POST /_sandbox/account_events`: posts one account webhook.
    pub async fn account_event(&self, e: &AccountEvent) -> Result<AccountEventResult, ClientError> {
        self.post("/_sandbox/account_events", e).await
    }

    /// `GET /_sandbox/reads`: read receipts the businesses sent.
    pub async fn reads(
        &self,
        phone_number_id: Option<&str>,
    ) -> Result<Vec<ReadRecord>, ClientError> {
        let q: Vec<(&str, &str)> = phone_number_id
            .map(|p| vec![("phone_number_id", p)])
            .unwrap_or_default();
        let list: DataList<ReadRecord> = self
            .send(self.http.get(self.url("/_sandbox/reads")).query(&q))
            .await?;
        Ok(list.data)
    }

    /// `GET /_sandbox/messages`, optionally filtered.
    pub async fn messages(
        &self,
        phone_number_id: Option<&str>,
        to: Option<&str>,
    ) -> Result<Vec<MessageRecord>, ClientError> {
        let mut q: Vec<(&str, &str)> = Vec::new();
        if let Some(p) = phone_number_id {
            q.push(("phone_number_id", p));
        }
        if let Some(t) = to {
            q.push(("to", t));
        }
        let list: DataList<MessageRecord> = self
            .send(self.http.get(self.url("/_sandbox/messages")).query(&q))
            .await?;
        Ok(list.data)
    }

    /// `GET /_sandbox/templates?waba_id=`.
    pub async fn templates(&self, waba_id: &str) -> Result<Vec<TemplateRecord>, ClientError> {
        let list: DataList<TemplateRecord> = self
            .send(
                self.http
                    .get(self.url("/_sandbox/templates"))
                    .query(&[("waba_id", waba_id)]),
            )
            .await?;
        Ok(list.data)
    }

    /// `POST /_sandbox/templates/decide`.
    pub async fn decide_template(
        &self,
        d: &TemplateDecision,
    ) -> Result<DecisionResult, ClientError> {
        self.post("/_sandbox/templates/decide", d).await
    }

    /// `POST /_sandbox/templates/decide` with `other_info`, `rejection_info`
    /// or `disable_date` beside the decision.
    pub async fn decide_template_with(
        &self,
        d: &TemplateDecision,
        extras: &DecisionExtras,
    ) -> Result<DecisionResult, ClientError> {
        let mut body = serde_json::to_value(d).map_err(ClientError::Encode)?;
        if let (Value::Object(map), Value::Object(more)) = (
            &mut body,
            serde_json::to_value(extras).map_err(ClientError::Encode)?,
        ) {
            map.extend(more);
        }
        self.post("/_sandbox/templates/decide", &body).await
    }

    /// `GET /_sandbox/knobs`.
    pub async fn knobs(&self) -> Result<Knobs, ClientError> {
        self.send(self.http.get(self.url("/_sandbox/knobs"))).await
    }

    /// `PUT /_sandbox/knobs` with a partial JSON object; returns all knobs.
    pub async fn set_knobs(&self, patch: &Value) -> Result<Knobs, ClientError> {
        self.send(self.http.put(self.url("/_sandbox/knobs")).json(patch))
            .await
    }

    /// `POST /_sandbox/reset`.
    pub async fn reset(&self, r: &ResetRequest) -> Result<Value, ClientError> {
        self.post("/_sandbox/reset", r).await
    }

    /// `GET /_sandbox/stats`.
    pub async fn stats(&self) -> Result<Stats, ClientError> {
        self.send(self.http.get(self.url("/_sandbox/stats"))).await
    }

    /// `GET /_sandbox/webhooks`, optionally only one `field`.
    pub async fn webhooks(&self, field: Option<&str>) -> Result<Vec<WebhookLogEntry>, ClientError> {
        let q: Vec<(&str, &str)> = field.map(|f| vec![("field", f)]).unwrap_or_default();
        let list: DataList<WebhookLogEntry> = self
            .send(self.http.get(self.url("/_sandbox/webhooks")).query(&q))
            .await?;
        Ok(list.data)
    }
}
