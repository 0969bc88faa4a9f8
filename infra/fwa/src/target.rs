//! Where `fwa` acts, and the one reader of what locates it: the local
//! stack's state file (`.local/dev.json`, written by `fincelo_local`'s
//! `dev_state`), or a deployed stack's outputs (`--stack-outputs`, as `sam
//! list stack-outputs --output json` or `aws cloudformation
//! describe-stacks` print them).
//!
//! Both targets reach the same admin API the Fincelo backend uses: on
//! loopback without a signature (the local runner stands in for API
//! Gateway's authoriser), deployed signed with SigV4 for `execute-api`
//! through the standard AWS credential chain (environment, profile, SSO,
//! role). So `status`, `parked`, `redrive`, `timeline`, `csm`, `channel
//! connect` and `submit-templates` behave the same on both. `enqueue` writes
//! the send queue and `window` reads the table, as upstream and the sender
//! do; `reply` and `clock` exist only locally (a sandbox plays the CSM, and
//! only the local runner's clock can be moved).

use std::collections::HashMap;
use std::time::SystemTime;

use http::Method;
use serde_json::Value;

/// Where fwa acts: the local stack or a deployed one.
pub enum Target {
    /// The state file's keys.
    Local(Value),
    /// A deployed stack's outputs by key.
    Deployed(HashMap<String, String>),
}

/// An admin API answer that is not a success, in the API's own words.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub code: Option<String>,
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{} ({code}, HTTP {})", self.message, self.status),
            None => write!(f, "{} (HTTP {})", self.message, self.status),
        }
    }
}

impl Target {
    /// The deployed stack if `--stack-outputs` was given, else the state file.
    pub fn open(state: &str, stack_outputs: Option<&str>) -> Result<Target, String> {
        if let Some(path) = stack_outputs {
            return Ok(Target::Deployed(read_outputs(path)?));
        }
        let raw = std::fs::read_to_string(state).map_err(|e| {
            format!("{state}: {e} (is `make dev` running? for a deployed stack pass --stack-outputs and --tenant)")
        })?;
        Ok(Target::Local(
            serde_json::from_str(&raw).map_err(|e| format!("{state}: {e}"))?,
        ))
    }

    /// A value by its state-file key or stack output name.
    pub fn get(&self, local_key: &str, output: &str) -> Result<&str, String> {
        match self {
            Target::Local(v) => v
                .get(local_key)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("the state file lacks {local_key}")),
            Target::Deployed(outputs) => outputs
                .get(output)
                .map(String::as_str)
                .ok_or_else(|| format!("the stack outputs lack {output}")),
        }
    }

    /// A local-only value; deployed, `what` is refused in plain words.
    pub fn local_only(&self, key: &str, what: &str) -> Result<&str, String> {
        match self {
            Target::Local(_) => self.get(key, ""),
            Target::Deployed(_) => Err(format!("{what} exists only on the local stack")),
        }
    }

    /// `--tenant`, or (locally) the state file's tenant.
    pub fn tenant(&self, flag: Option<&str>) -> Result<String, String> {
        if let Some(t) = flag {
            return Ok(t.to_string());
        }
        match self {
            Target::Local(v) => v
                .get("tenant_id")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| "name the tenant with --tenant".to_string()),
            Target::Deployed(_) => Err("name the tenant with --tenant".into()),
        }
    }

    pub fn table(&self) -> Result<&str, String> {
        self.get("table", "TableName")
    }

    pub fn send_queue_url(&self) -> Result<&str, String> {
        self.get("send_queue_url", "SendQueueUrl")
    }

    /// The admin API's base, `…/admin/tenants`.
    pub fn admin_url(&self) -> Result<&str, String> {
        self.get("admin_url", "AdminApiUrl")
            .map(|u| u.trim_end_matches('/'))
    }

    /// Locally the emulator; deployed, the standard AWS chain
    /// (`AWS_ENDPOINT_URL` is honoured too).
    pub async fn sdk(&self) -> Result<aws_config::SdkConfig, String> {
        Ok(match self {
            Target::Local(_) => fincelo_local::emulator::sdk_config(self.get("moto", "")?)
                .await
                .map_err(|e| e.to_string())?,
            Target::Deployed(_) => {
                aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .load()
                    .await
            }
        })
    }

    /// Unix seconds on the stack's clock: the local runner's (which `fwa
    /// clock advance` moves), or the system's for a deployed stack.
    pub async fn now(&self) -> Result<i64, String> {
        match self {
            Target::Local(_) => {
                let body = self.clock().await?;
                body["now_unix"]
                    .as_i64()
                    .ok_or_else(|| format!("the local clock answered without now_unix: {body}"))
            }
            Target::Deployed(_) => Ok(fincelo::clock::Clock::system().now()),
        }
    }

    /// The local runner's clock, as `GET /_local/clock` answers.
    pub async fn clock(&self) -> Result<Value, String> {
        let url = self.local_only("clock_url", "a clock that can be moved")?;
        send(reqwest::Client::new().get(url), url).await
    }

    /// Calls the admin API at `path` (below `…/admin/tenants`), signed when
    /// the stack is deployed. A non-2xx answer is an [`ApiError`].
    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Value, CallError> {
        self.admin_status(method, path, body).await.map(|(_, v)| v)
    }

    /// [`Target::admin`], with the answer's status (201 from 200, say).
    pub async fn admin_status(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<(u16, Value), CallError> {
        let url = format!("{}/{}", self.admin_url()?, path.trim_start_matches('/'));
        let mut req = reqwest::Client::new().request(method.clone(), &url);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_vec());
        }
        if let Target::Deployed(_) = self {
            let sdk = self.sdk().await?;
            for (name, value) in sign(&sdk, method.as_str(), &url, body.unwrap_or_default()).await?
            {
                req = req.header(name, value);
            }
        }
        let resp = req.send().await.map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| format!("{url}: {e}"))?;
        let value: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if (200..300).contains(&status) {
            return Ok((status, value));
        }
        Err(CallError::Api(api_error(status, &value)))
    }
}

/// Why an admin call failed: the API answered no, or it could not be asked.
#[derive(Debug)]
pub enum CallError {
    Api(ApiError),
    Other(String),
}

impl From<String> for CallError {
    fn from(s: String) -> Self {
        CallError::Other(s)
    }
}

impl From<&str> for CallError {
    fn from(s: &str) -> Self {
        CallError::Other(s.to_string())
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Api(e) => e.fmt(f),
            CallError::Other(s) => f.write_str(s),
        }
    }
}

/// The API's error body (`{"error": {"code", "message"}}`, or the template
/// route's `{"error": "..."}`) in plain words.
fn api_error(status: u16, body: &Value) -> ApiError {
    let err = &body["error"];
    match err {
        Value::Object(_) => ApiError {
            status,
            code: err["code"].as_str().map(str::to_string),
            message: err["message"].as_str().unwrap_or("no message").to_string(),
        },
        Value::String(s) => ApiError {
            status,
            code: None,
            message: s.clone(),
        },
        _ => ApiError {
            status,
            code: None,
            message: match body {
                Value::Null => "empty answer".to_string(),
                other => other.to_string(),
            },
        },
    }
}

/// A GET or POST whose answer must be 2xx JSON.
async fn send(req: reqwest::RequestBuilder, url: &str) -> Result<Value, String> {
    let resp = req.send().await.map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.map_err(|e| format!("{url}: {e}"))?;
    if !(200..300).contains(&status) {
        return Err(format!("{url}: {}", api_error(status, &body)));
    }
    Ok(body)
}

/// POSTs `body` to a local-only control route (the runner's clock).
pub async fn post_local(url: &str, body: &Value) -> Result<Value, String> {
    send(reqwest::Client::new().post(url).json(body), url).await
}

/// SigV4 headers for `execute-api` (API Gateway's `AWS_IAM` authoriser),
/// with the chain's credentials and region; the body is part of the
/// signature.
async fn sign(
    sdk: &aws_config::SdkConfig,
    method: &str,
    url: &str,
    body: &[u8],
) -> Result<Vec<(String, String)>, String> {
    use aws_credential_types::provider::ProvideCredentials;
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use aws_sigv4::sign::v4;

    let credentials = sdk
        .credentials_provider()
        .ok_or("no AWS credentials configured")?
        .provide_credentials()
        .await
        .map_err(|e| format!("AWS credentials: {e}"))?;
    let identity = credentials.into();
    let region = sdk
        .region()
        .map(|r| r.to_string())
        .ok_or("no AWS region configured (set AWS_REGION)")?;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name("execute-api")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let signable = SignableRequest::new(method, url, std::iter::empty(), SignableBody::Bytes(body))
        .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect())
}

/// Stack outputs as `[{"OutputKey", "OutputValue"}]` (CloudFormation, SAM)
/// or as a plain `{"Key": "value"}` object.
fn read_outputs(path: &str) -> Result<HashMap<String, String>, String> {
    let raw = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let v: Value = serde_json::from_str(&raw).map_err(|e| format!("{path}: {e}"))?;
    let list = v.pointer("/Stacks/0/Outputs").unwrap_or(&v).clone();
    let pairs: HashMap<String, String> = match list {
        Value::Array(items) => items
            .iter()
            .filter_map(|o| {
                Some((
                    o.get("OutputKey")?.as_str()?.to_string(),
                    o.get("OutputValue")?.as_str()?.to_string(),
                ))
            })
            .collect(),
        Value::Object(map) => map
            .into_iter()
            .filter_map(|(k, v)| Some((k, v.as_str()?.to_string())))
            .collect(),
        _ => HashMap::new(),
    };
    if pairs.is_empty() {
        return Err(format!("{path}: no stack outputs found"));
    }
    Ok(pairs)
}
