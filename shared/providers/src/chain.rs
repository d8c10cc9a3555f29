//! A channel's provider chain from its list of providers: the factory
//! that turns each spec (`outbox`, `http:NAME=URL`, `smtp:NAME=URL`) into
//! an adapter. The chain's rule (which provider a message may go to) is
//! the app's ([`bealert_app::providers::ProviderChain`]).
//!
//! The remote kinds are built only where their feature is: `http` (SMS
//! aggregators over HTTP, reqwest) and `email` (SMTP relays, lettre); a
//! build without one says so when a list names it.

use bealert_app::ports::Gateway;
use bealert_app::providers::{Faults, FaultyGateway, Provider, ProviderChain};
use bealert_core::Channel;
use std::collections::HashMap;
use std::sync::Arc;

/// Makes one of a home's own providers from its kind and name.
pub type OwnProvider<'a> = &'a dyn Fn(&str, &str) -> Result<Arc<dyn Gateway>, String>;

/// A channel's providers from a list such as
/// `outbox,outbox:backup,http:aggregator=https://sms.example/api`:
/// * `KIND` or `KIND:NAME`: one of the home's own (`outbox` in the
///   embedded home; `sns`, `ses`, `voice` in the AWS home), made by `own`;
/// * `http:NAME=URL` (SMS): an SMS aggregator over HTTP ([`crate::http_sms`]),
///   its bearer token from `BEALERT_PROVIDER_TOKEN_<NAME>`;
/// * `smtp:NAME=URL` (e-mail): an SMTP relay ([`crate::smtp`]), its account
///   from `BEALERT_PROVIDER_USER_<NAME>` and `BEALERT_PROVIDER_TOKEN_<NAME>`,
///   the sender from `BEALERT_EMAIL_FROM`.
///
/// A provider named in `faults` is wrapped in a [`FaultyGateway`].
pub fn build_chain(
    channel: Channel,
    list: &str,
    faults: &HashMap<String, Faults>,
    own: OwnProvider<'_>,
) -> Result<ProviderChain, String> {
    let mut providers: Vec<Provider> = Vec::new();
    for spec in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let remote = |kind: &str, fits: Channel| -> Result<Option<(String, String)>, String> {
            let Some(rest) = spec.strip_prefix(kind).and_then(|r| r.strip_prefix(':')) else {
                return Ok(None);
            };
            if channel != fits {
                return Err(format!(
                    "`{spec}`: {kind} providers carry {}, not {}",
                    fits.code(),
                    channel.code()
                ));
            }
            let (name, url) = rest
                .split_once('=')
                .ok_or_else(|| format!("`{spec}`: expected {kind}:NAME=URL"))?;
            Ok(Some((name.to_string(), url.to_string())))
        };
        let secret = |what: &str, name: &str| {
            std::env::var(format!(
                "BEALERT_PROVIDER_{what}_{}",
                name.to_uppercase().replace('-', "_")
            ))
            .ok()
        };
        let (name, gateway): (String, Arc<dyn Gateway>) = if let Some((name, url)) =
            remote("http", Channel::Sms)?
        {
            let token = secret("TOKEN", &name);
            let http = http_sms(&url, token)?;
            (name, http)
        } else if let Some((name, url)) = remote("smtp", Channel::Email)? {
            let from = std::env::var("BEALERT_EMAIL_FROM").map_err(|_| {
                format!("`{spec}`: set BEALERT_EMAIL_FROM, the address alerts are sent from")
            })?;
            let account = match (secret("USER", &name), secret("TOKEN", &name)) {
                (Some(user), Some(password)) => Some((user, password)),
                (None, None) => None,
                _ => {
                    return Err(format!(
                        "`{spec}`: set both BEALERT_PROVIDER_USER_{0} and BEALERT_PROVIDER_TOKEN_{0}, or neither",
                        name.to_uppercase().replace('-', "_")
                    ));
                }
            };
            let smtp = smtp(&url, account, &from).map_err(|e| format!("`{spec}`: {e}"))?;
            (name, smtp)
        } else {
            let (kind, name) = spec.split_once(':').unwrap_or((spec, spec));
            (name.to_string(), own(kind, name)?)
        };
        if providers.iter().any(|p| p.name == name) {
            return Err(format!("`{spec}`: a second provider named {name}"));
        }
        let gateway = match faults.get(&name) {
            Some(f) => {
                tracing::warn!(provider = %name, faults = ?f, "faults injected");
                Arc::new(FaultyGateway::new(gateway, f.clone())) as Arc<dyn Gateway>
            }
            None => gateway,
        };
        providers.push(Provider { name, gateway });
    }
    if providers.is_empty() {
        return Err("no provider named".into());
    }
    Ok(ProviderChain::new(providers))
}

/// An SMS aggregator over HTTP ([`crate::http_sms`]).
#[cfg(feature = "http")]
fn http_sms(url: &str, token: Option<String>) -> Result<Arc<dyn Gateway>, String> {
    let http = crate::http_sms::HttpSms::new(url, token, std::time::Duration::from_secs(5))?;
    Ok(Arc::new(http))
}

#[cfg(not(feature = "http"))]
fn http_sms(url: &str, _token: Option<String>) -> Result<Arc<dyn Gateway>, String> {
    Err(format!(
        "{url}: SMS aggregators over HTTP are not in this build (bealert-providers' http feature)"
    ))
}

/// An SMTP relay ([`crate::smtp`]).
#[cfg(feature = "email")]
fn smtp(
    url: &str,
    account: Option<(String, String)>,
    from: &str,
) -> Result<Arc<dyn Gateway>, String> {
    let smtp = crate::smtp::SmtpEmail::new(url, account, from, std::time::Duration::from_secs(10))?;
    Ok(Arc::new(smtp))
}

#[cfg(not(feature = "email"))]
fn smtp(
    _url: &str,
    _account: Option<(String, String)>,
    _from: &str,
) -> Result<Arc<dyn Gateway>, String> {
    Err("SMTP relays are not in this build (bealert-providers' email feature)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_provider_on_the_wrong_channel_or_without_a_url_is_refused_with_what_to_fix() {
        let own: OwnProvider<'_> = &|_, _| Err("no own provider here".into());
        let none = HashMap::new();
        let e = build_chain(Channel::Sms, "smtp:relay=smtp://localhost:25", &none, own)
            .err()
            .unwrap();
        assert!(e.contains("smtp providers carry email, not sms"), "{e}");
        let e = build_chain(Channel::Email, "http:agg=http://localhost:1", &none, own)
            .err()
            .unwrap();
        assert!(e.contains("http providers carry sms, not email"), "{e}");
        let e = build_chain(Channel::Email, "smtp:relay", &none, own)
            .err()
            .unwrap();
        assert!(e.contains("expected smtp:NAME=URL"), "{e}");
    }
}
