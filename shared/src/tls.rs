//! The one TLS client configuration every outbound HTTPS call uses: the
//! Graph API client ([`crate::graph`]) and the AWS SDK clients
//! ([`crate::aws_http`]).
//!
//! rustls with the aws-lc-rs provider, trusting the Mozilla root set compiled
//! into the binary (`webpki-roots`). That set holds the roots Meta's
//! certificates (issued by DigiCert) and AWS endpoints (Amazon Trust
//! Services) chain to; the tests below check that they stay in it. Meta's live
//! chain could not be checked from the offline build machines.
//!
//! Why not the system's roots (what reqwest and the AWS SDK load by
//! default): each of them read and decoded every certificate under
//! `/etc/ssl/certs` when its client was built, together about 5 ms of every
//! function's cold start on the build machine (issue 9, `make bench`). The compiled-in set is already
//! parsed, so building this costs microseconds. It changes with a dependency
//! update (`cargo update -p webpki-roots`), as the Lambda image's set changes
//! with a runtime update.

use std::sync::Arc;

/// The client configuration. Fails only if the provider offers no protocol
/// version, which aws-lc-rs always does.
pub fn client_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots())
        .with_no_client_auth())
}

fn roots() -> rustls::RootCertStore {
    rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusts_root_named(name: &str) -> bool {
        let name = name.as_bytes();
        roots()
            .roots
            .iter()
            .any(|a| a.subject.as_ref().windows(name.len()).any(|w| w == name))
    }

    #[test]
    fn the_roots_meta_and_aws_chain_to_are_trusted() {
        assert!(roots().len() > 100, "{} roots", roots().len());
        for name in [
            // Meta's certificates are issued by DigiCert; its current roots.
            "DigiCert Global Root G2",
            "DigiCert Global Root G3",
            // AWS endpoints chain to Amazon Trust Services.
            "Amazon Root CA 1",
            "Amazon Root CA 2",
            "Amazon Root CA 3",
            "Amazon Root CA 4",
            "Starfield Services Root Certificate Authority - G2",
        ] {
            assert!(trusts_root_named(name), "{name}");
        }
        // A name that is not a root is not found: the check can fail.
        assert!(!trusts_root_named("Fincelo Test Root"));
        assert!(client_config().is_ok());
    }
}
