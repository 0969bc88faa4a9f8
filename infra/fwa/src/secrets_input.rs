//! The three channel secrets for `fwa channel connect`, read from a file
//! or standard input, never from the command line: argv is visible to
//! every user of the machine (`ps`) and lands in shell history.
//!
//! Two forms are read: a JSON object `{"access_token", "app_secret",
//! "verify_token"}` (the admin API's own field names), or one `name=value`
//! per line with the same names (blank lines and `#` comments skipped).
//! Errors name the field, never a value. The values are handed to the
//! admin API as they are; its own checks (weak or placeholder secrets,
//! Meta's token check) answer with the field's name.

use serde_json::{Map, Value};

const FIELDS: [&str; 3] = ["access_token", "app_secret", "verify_token"];

/// The secrets as the channel body's fields (not printable: no Debug).
pub struct ChannelSecrets(Map<String, Value>);

impl ChannelSecrets {
    /// Adds the secrets to a channel body.
    pub fn into_body(self, mut body: Map<String, Value>) -> Value {
        body.extend(self.0);
        Value::Object(body)
    }
}

/// Reads `path` (`-` for standard input).
pub fn read(path: &str) -> Result<ChannelSecrets, String> {
    let text = if path == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| format!("standard input: {e}"))?
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?
    };
    parse(&text).map_err(|e| {
        let source = if path == "-" { "standard input" } else { path };
        format!("{source}: {e}")
    })
}

fn parse(text: &str) -> Result<ChannelSecrets, String> {
    let mut map = Map::new();
    if text.trim_start().starts_with('{') {
        let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(text) else {
            return Err("not a JSON object".into());
        };
        for (k, v) in obj {
            match v {
                Value::String(s) => {
                    map.insert(k, Value::String(s));
                }
                _ => return Err(format!("{k} must be a string")),
            }
        }
    } else {
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                return Err(format!("line {} is not name=value", n + 1));
            };
            map.insert(k.trim().to_string(), Value::String(v.trim().to_string()));
        }
    }
    if let Some(unknown) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        // A name that looks like a field's is shown (a typo); anything else
        // may be a pasted secret, and is not.
        let looks_like_a_name =
            unknown.len() <= 24 && unknown.chars().all(|c| c.is_ascii_lowercase() || c == '_');
        let shown = if looks_like_a_name {
            format!(" {unknown:?}")
        } else {
            String::new()
        };
        return Err(format!(
            "unknown field{shown}; expected {}",
            FIELDS.join(", ")
        ));
    }
    if let Some(missing) = FIELDS.iter().find(|f| !map.contains_key(**f)) {
        return Err(format!("{missing} is missing"));
    }
    Ok(ChannelSecrets(map))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_name_value_lines_read_the_same() {
        let json = r#"{"access_token":"EAAG1","app_secret":"s3cr3t","verify_token":"v-tok"}"#;
        let lines =
            "# the acme app\naccess_token=EAAG1\n\napp_secret = s3cr3t\nverify_token=v-tok\n";
        let a = parse(json).expect("json").into_body(Map::new());
        let b = parse(lines).expect("lines").into_body(Map::new());
        assert_eq!(a, b);
        assert_eq!(a["app_secret"], "s3cr3t");
    }

    #[test]
    fn errors_name_the_field_never_the_value() {
        for (text, want) in [
            (
                "access_token=EAAG-SECRET\napp_secret=x",
                "verify_token is missing",
            ),
            (
                "access_token=EAAG-SECRET\ntoken=EAAG-SECRET",
                "unknown field \"token\"",
            ),
            ("EAAG-SECRET", "line 1 is not name=value"),
            ("EAAG-SECRET=x", "unknown field; expected"),
            (r#"{"access_token": 5}"#, "access_token must be a string"),
        ] {
            let err = parse(text).err().expect(text);
            assert!(err.contains(want), "{err}");
            assert!(!err.contains("EAAG-SECRET"), "{err}");
        }
    }
}
