//! One identity provider: its keys, the issuer and audience its tokens must name, and where its tokens keep the
//! user's roles. It checks a token's signature and claims, and says whom the token names.

use std::fs;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use tidings_protocol::now_ms;

use super::keys::{KeySet, Keys};
use super::{Identity, Rejection};
use crate::config::ProviderConfig;

/// A provider of tokens the server accepts.
pub struct Provider {
    keys: Keys,
    issuer: Option<String>,
    audience: Option<String>,
    /// Where the roles are: a claim's name, or a path of names joined by `.`.
    roles_claim: String,
    /// Seconds of clock skew tolerated on `exp` and `nbf`.
    leeway: u64,
}

impl Provider {
    /// The provider `config` describes; with an HS256 secret, also the secret (to mint tokens with).
    pub fn from_config(config: &ProviderConfig, leeway: u64) -> anyhow::Result<(Provider, Option<Vec<u8>>)> {
        let sources = [
            config.secret.is_some(),
            config.secret_file.is_some(),
            config.public_key_file.is_some(),
            config.jwks_url.is_some(),
        ];
        anyhow::ensure!(
            sources.iter().filter(|s| **s).count() == 1,
            "name one key: secret, secret_file, public_key_file or jwks_url"
        );
        let mut secret = None;
        let keys = if let Some(url) = &config.jwks_url {
            anyhow::ensure!(
                url.starts_with("https://") || url.starts_with("http://"),
                "jwks_url must be an http(s) URL, not {url:?}"
            );
            anyhow::ensure!(config.algorithm.is_none(), "a key set names its own algorithms; drop algorithm");
            Keys::Published(KeySet::new(url))
        } else if let Some(path) = &config.public_key_file {
            let pem = fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            match config.algorithm.as_deref() {
                Some("RS256") => Keys::Fixed(Algorithm::RS256, DecodingKey::from_rsa_pem(&pem)?),
                Some("ES256") => Keys::Fixed(Algorithm::ES256, DecodingKey::from_ec_pem(&pem)?),
                other => anyhow::bail!("algorithm must be RS256 or ES256 with a public key, not {other:?}"),
            }
        } else {
            if let Some(algorithm) = config.algorithm.as_deref().filter(|a| *a != "HS256") {
                anyhow::bail!("algorithm {algorithm} needs public_key_file; a secret signs HS256");
            }
            let bytes = match (&config.secret, &config.secret_file) {
                (Some(text), _) => text.clone().into_bytes(),
                (None, Some(path)) => {
                    let text =
                        fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
                    // A secret file ends with a newline more often than not; it is not part of the secret.
                    text.trim_end_matches(['\n', '\r']).as_bytes().to_vec()
                }
                (None, None) => anyhow::bail!("name one key: secret, secret_file, public_key_file or jwks_url"),
            };
            anyhow::ensure!(bytes.len() >= 32, "the secret must be at least 32 bytes long");
            let key = DecodingKey::from_secret(&bytes);
            secret = Some(bytes);
            Keys::Fixed(Algorithm::HS256, key)
        };
        let provider = Provider {
            keys,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            roles_claim: config.roles_claim.clone().unwrap_or_else(|| "roles".to_owned()),
            leeway,
        };
        Ok((provider, secret))
    }

    /// Whether this provider may have issued a token that claims `issuer`: one without an issuer of its own takes
    /// any token; one with an issuer only tokens that name it.
    pub fn takes_issuer(&self, issuer: Option<&str>) -> bool {
        self.issuer.as_deref().is_none_or(|own| issuer == Some(own))
    }

    /// Fetches the provider's published keys, if it publishes them.
    pub async fn prefetch(&self) {
        if let Keys::Published(set) = &self.keys {
            set.prefetch().await;
        }
    }

    /// Checks the token's signature (made with `alg`, under key id `kid`) and its claims.
    pub async fn verify(&self, token: &str, alg: Algorithm, kid: Option<&str>) -> Result<Identity, Rejection> {
        let key = self.keys.key(alg, kid).await?;
        let mut validation = Validation::new(alg);
        validation.set_required_spec_claims(&["sub", "exp"]);
        validation.leeway = self.leeway;
        validation.validate_nbf = true;
        match &self.audience {
            Some(audience) => validation.set_audience(&[audience]),
            // Without an audience of its own, a provider does not judge the token's (which tokens of most
            // providers carry).
            None => validation.validate_aud = false,
        }
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
        }
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => Rejection::BadSignature,
                ErrorKind::ExpiredSignature => Rejection::Expired,
                ErrorKind::ImmatureSignature => Rejection::NotYetValid,
                ErrorKind::InvalidIssuer => Rejection::WrongIssuer,
                ErrorKind::InvalidAudience => Rejection::WrongAudience,
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => Rejection::AlgorithmNotAllowed,
                ErrorKind::MissingRequiredClaim(_) | ErrorKind::InvalidClaimFormat(_) => Rejection::MissingClaim,
                // The claims are JSON of the wrong shape (a numeric `exp` that is a string): a claim is wrong.
                ErrorKind::Json(e) if e.is_data() => Rejection::MissingClaim,
                _ => Rejection::Malformed,
            })?;
        self.identity(data.claims)
    }

    /// Whom verified claims name.
    fn identity(&self, claims: Map<String, Value>) -> Result<Identity, Rejection> {
        let sub = claims.get("sub").and_then(Value::as_str).ok_or(Rejection::MissingClaim)?;
        // A user id is 1 to 256 characters with no control character: NUL cannot be stored by PostgreSQL, and a
        // newline or an escape would let a token write lines of its own into the server's log.
        if sub.is_empty() || sub.chars().count() > 256 || sub.chars().any(char::is_control) {
            return Err(Rejection::MissingClaim);
        }
        let exp = claims.get("exp").and_then(Value::as_u64).ok_or(Rejection::MissingClaim)?;
        // jsonwebtoken compares whole seconds and accepts `exp == now`, so a token was good for up to a second
        // after its expiry (and a session just told TOKEN_EXPIRED could sign in again with it). RFC 7519 says the
        // current time must be before `exp`: compared here in milliseconds, with only the configured leeway.
        let leeway_ms = self.leeway.saturating_mul(1000);
        if now_ms() >= exp.saturating_mul(1000).saturating_add(leeway_ms) {
            return Err(Rejection::Expired);
        }
        // Milliseconds, within what JavaScript holds exactly, however far in the future `exp` is.
        let expires_at_ms = exp.saturating_mul(1000).min(tidings_protocol::MAX_SAFE_INTEGER);
        // Roles are an array of strings, or one string; absent or null is none. Anything else is a claim of the
        // wrong shape, refused rather than read as fewer roles than the provider meant.
        let roles = match claim_at(&claims, &self.roles_claim) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(one)) => vec![one.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or(Rejection::MissingClaim)?,
            Some(_) => return Err(Rejection::MissingClaim),
        };
        let user_id = sub.to_owned();
        Ok(Identity { user_id, roles, expires_at_ms, claims: std::sync::Arc::new(claims) })
    }
}

/// The claim at `path`: a claim of that very name (which may hold dots, as URL-named claims do), else the names
/// joined by `.` walked into nested objects (`realm_access.roles`).
fn claim_at<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(value) = claims.get(path) {
        return Some(value);
    }
    let mut names = path.split('.');
    let mut value = claims.get(names.next()?)?;
    for name in names {
        value = value.as_object()?.get(name)?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn roles_are_found_by_name_or_by_path() {
        let claims = json!({
            "roles": ["admin"],
            "realm_access": { "roles": ["warehouse", 7, "clerk"] },
            "https://example.com/roles": "auditor",
        });
        let claims = claims.as_object().expect("an object");
        assert_eq!(claim_at(claims, "roles"), Some(&json!(["admin"])));
        assert_eq!(claim_at(claims, "realm_access.roles"), Some(&json!(["warehouse", 7, "clerk"])));
        assert_eq!(claim_at(claims, "https://example.com/roles"), Some(&json!("auditor")));
        assert_eq!(claim_at(claims, "realm_access.nothing"), None);
    }
}
