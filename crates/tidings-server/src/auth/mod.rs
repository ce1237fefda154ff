//! Token verification and minting: JWTs checked by one identity provider or several, each with a shared secret
//! (HS256), a public key file (RS256, ES256) or the keys published at a JWKS URL, and optionally an issuer and an
//! audience; roles are read from a claim path of the provider's choosing.
//!
//! A token is offered to the providers whose issuer it names (a provider without an issuer takes any), in the
//! order configured; the first that accepts it decides. When none does, the rejection is the one that says most:
//! a failed claim of a genuine signature before an unknown key, before a bad signature, before a wrong algorithm.

mod keys;
mod provider;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tidings_protocol::{now_ms, ErrorCode, ErrorPayload};

use crate::config::{AuthConfig, ProviderConfig};
use provider::Provider;

/// The file in the data dir that holds the generated HS256 secret of an unconfigured server.
pub const GENERATED_SECRET_FILE: &str = "auth-secret";

/// The claims Tidings reads from a token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Roles, such as `admin`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Issued at, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
}

/// Who a verified token says the user is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The token's `sub`.
    pub user_id: String,
    /// The token's roles.
    pub roles: Vec<String>,
    /// The token's `exp`, in Unix milliseconds.
    pub expires_at_ms: u64,
    /// Every claim of the token, for access rules that name one (`auth.claims.org`).
    pub claims: Arc<Map<String, Value>>,
}

impl Identity {
    /// A user with roles and no other claims, whose token never expires: for tests and the server's own work.
    pub fn of(user_id: &str, roles: &[&str]) -> Identity {
        Identity {
            user_id: user_id.to_owned(),
            roles: roles.iter().map(|role| (*role).to_owned()).collect(),
            expires_at_ms: u64::MAX,
            claims: Arc::default(),
        }
    }
}

/// Why a token was rejected: the `details.reason` of `auth_failed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Not a JWT, or its parts do not decode.
    Malformed,
    /// The signature does not match.
    BadSignature,
    /// Signed with another algorithm than the configured one, `none` included.
    AlgorithmNotAllowed,
    /// `sub` or `exp` is missing or has the wrong type.
    MissingClaim,
    /// `nbf` is in the future.
    NotYetValid,
    /// `exp` is in the past.
    Expired,
    /// The `userId` of `auth` differs from `sub`.
    UserMismatch,
    /// A re-authentication names another user than the session's.
    UserChange,
    /// The token's `iss` is not the issuer of any configured provider.
    WrongIssuer,
    /// The token's `aud` does not name the audience its provider expects.
    WrongAudience,
    /// The token names a key (`kid`) its provider does not publish, even after fetching its keys again.
    UnknownKey,
}

impl Rejection {
    /// The `details.reason` string.
    pub fn reason(self) -> &'static str {
        match self {
            Rejection::Malformed => "malformed",
            Rejection::BadSignature => "bad_signature",
            Rejection::AlgorithmNotAllowed => "algorithm_not_allowed",
            Rejection::MissingClaim => "missing_claim",
            Rejection::NotYetValid => "not_yet_valid",
            Rejection::Expired => "expired",
            Rejection::UserMismatch => "user_mismatch",
            Rejection::UserChange => "user_change",
            Rejection::WrongIssuer => "wrong_issuer",
            Rejection::WrongAudience => "wrong_audience",
            Rejection::UnknownKey => "unknown_key",
        }
    }

    /// How much the rejection says about the token, to pick the one to report when no provider accepts it: a
    /// failed claim (the signature was genuine) says most.
    fn weight(self) -> u8 {
        match self {
            Rejection::Malformed | Rejection::AlgorithmNotAllowed => 0,
            Rejection::BadSignature => 1,
            Rejection::UnknownKey | Rejection::WrongIssuer => 2,
            _ => 3,
        }
    }

    /// The `auth_failed` payload for this rejection.
    pub fn payload(self) -> ErrorPayload {
        let (code, message) = match self {
            Rejection::Malformed => (ErrorCode::Unauthorized, "the token is not a well-formed JWT"),
            Rejection::BadSignature => (ErrorCode::Unauthorized, "the token's signature does not match"),
            Rejection::AlgorithmNotAllowed => {
                (ErrorCode::Unauthorized, "the token is signed with an algorithm this server does not accept")
            }
            Rejection::MissingClaim => (ErrorCode::Unauthorized, "the token lacks a valid 'sub' or 'exp' claim"),
            Rejection::NotYetValid => (ErrorCode::Unauthorized, "the token is not valid yet ('nbf')"),
            Rejection::Expired => (ErrorCode::TokenExpired, "the token has expired"),
            Rejection::UserMismatch => (ErrorCode::Unauthorized, "userId does not match the token's subject"),
            Rejection::UserChange => {
                (ErrorCode::Unauthorized, "a connection belongs to one user; reconnect to sign in as another")
            }
            Rejection::WrongIssuer => {
                (ErrorCode::Unauthorized, "the token's issuer ('iss') is not one this server trusts")
            }
            Rejection::WrongAudience => (ErrorCode::Unauthorized, "the token was issued for another audience ('aud')"),
            Rejection::UnknownKey => {
                (ErrorCode::Unauthorized, "the token is signed with a key ('kid') its issuer does not publish")
            }
        };
        ErrorPayload::new(code, message).with_detail("reason", self.reason())
    }
}

/// Verifies tokens, and mints them where the server holds the signing secret.
pub struct Authenticator {
    providers: Vec<Provider>,
    /// The first HS256 secret configured (or generated), which `tidings token` and the dev sign-in sign with.
    encoding: Option<EncodingKey>,
    /// Set when the secret was generated because none was configured: the dev sign-in is allowed then.
    generated: Option<PathBuf>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("providers", &self.providers.len())
            .field("generated", &self.generated)
            .finish()
    }
}

impl Authenticator {
    /// Builds the authenticator from the config: the provider of the top-level keys, then each of `providers`;
    /// with no key configured at all, reads or creates a secret in `data_dir`.
    pub fn from_config(config: &AuthConfig, data_dir: &Path) -> anyhow::Result<Authenticator> {
        let top = ProviderConfig {
            secret: config.secret.clone(),
            secret_file: config.secret_file.clone(),
            public_key_file: config.public_key_file.clone(),
            algorithm: config.algorithm.clone(),
            jwks_url: config.jwks_url.clone(),
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            roles_claim: config.roles_claim.clone(),
        };
        let mut configured = Vec::new();
        if top.has_keys() {
            configured.push(("auth", top.clone()));
        } else if top.issuer.is_some() || top.audience.is_some() {
            anyhow::bail!(
                "auth.issuer and auth.audience need a key: auth.secret, secret_file, public_key_file or jwks_url"
            );
        }
        for (n, provider) in config.providers.iter().enumerate() {
            anyhow::ensure!(
                provider.has_keys(),
                "auth.providers[{n}] needs a key: secret, secret_file, public_key_file or jwks_url"
            );
            configured.push(("auth.providers", provider.clone()));
        }
        let mut generated = None;
        if configured.is_empty() {
            let (secret, path) = generated_secret(data_dir)?;
            generated = Some(path);
            configured.push(("auth", ProviderConfig { secret: Some(String::from_utf8(secret)?), ..top }));
        }
        let mut providers = Vec::with_capacity(configured.len());
        let mut encoding = None;
        for (at, provider) in &configured {
            let (built, secret) =
                Provider::from_config(provider, config.leeway_seconds).map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
            if encoding.is_none() {
                encoding = secret.map(|secret| EncodingKey::from_secret(&secret));
            }
            providers.push(built);
        }
        Ok(Authenticator { providers, encoding, generated })
    }

    /// Whether it can sign tokens: it holds an HS256 secret, configured or generated.
    pub fn can_mint(&self) -> bool {
        self.encoding.is_some()
    }

    /// The file of the generated secret, when the server made one because none was configured.
    pub fn generated_secret(&self) -> Option<&Path> {
        self.generated.as_deref()
    }

    /// Fetches the key sets of the providers that publish theirs, so that the first sign-ins find them.
    pub async fn prefetch(&self) {
        for provider in &self.providers {
            provider.prefetch().await;
        }
    }

    /// Checks a token and says whom it names. A token signed with a key its provider has not published yet may
    /// wait for one fetch of the provider's keys (rate-limited); every other check is in memory.
    pub async fn verify(&self, token: &str) -> Result<Identity, Rejection> {
        // The header is read by hand first, so that `alg: none` and other algorithms get their own reason rather
        // than a parse error.
        let Some(header) = header_of(token) else { return Err(Rejection::Malformed) };
        let Ok(algorithm) = header.alg.parse::<Algorithm>() else { return Err(Rejection::AlgorithmNotAllowed) };
        let issuer = issuer_of(token);
        let mut rejection: Option<Rejection> = None;
        for provider in &self.providers {
            if !provider.takes_issuer(issuer.as_deref()) {
                rejection = rejection.or(Some(Rejection::WrongIssuer));
                continue;
            }
            match provider.verify(token, algorithm, header.kid.as_deref()).await {
                Ok(identity) => return Ok(identity),
                Err(refused) if rejection.is_none_or(|r| refused.weight() > r.weight()) => rejection = Some(refused),
                Err(_) => {}
            }
        }
        Err(rejection.unwrap_or(Rejection::WrongIssuer))
    }

    /// Signs a token for `user` with `roles`, valid for `ttl`; only a server that holds an HS256 secret can.
    pub fn mint(&self, user: &str, roles: &[String], ttl: Duration) -> anyhow::Result<String> {
        self.mint_with(user, roles, Map::new(), ttl)
    }

    /// Like [`Authenticator::mint`], with further claims (`org`, ...); `sub`, `exp`, `roles` and `iat` are the
    /// arguments' and cannot be overridden.
    pub fn mint_with(
        &self,
        user: &str,
        roles: &[String],
        extra: Map<String, Value>,
        ttl: Duration,
    ) -> anyhow::Result<String> {
        let Some(key) = &self.encoding else {
            anyhow::bail!("this server verifies tokens with public keys; sign them with the matching private key");
        };
        let now = now_ms() / 1000;
        let claims =
            Claims { sub: user.to_owned(), exp: now + ttl.as_secs().max(1), roles: roles.to_vec(), iat: Some(now) };
        let mut all = extra;
        if let Value::Object(own) = serde_json::to_value(&claims)? {
            all.extend(own);
        }
        Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), &all, key)?)
    }
}

/// What a token's header says, read without checking anything.
struct TokenHeader {
    alg: String,
    kid: Option<String>,
}

/// The header of a token, if it is base64url JSON with a string `alg`.
fn header_of(token: &str) -> Option<TokenHeader> {
    let header = token.split('.').next()?;
    let bytes = URL_SAFE_NO_PAD.decode(header.trim_end_matches('=')).ok()?;
    let header: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let alg = header.get("alg")?.as_str()?.to_owned();
    let kid = header.get("kid").and_then(serde_json::Value::as_str).map(str::to_owned);
    Some(TokenHeader { alg, kid })
}

/// The `iss` a token claims, read without checking its signature: only to choose which providers to ask.
fn issuer_of(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Some(claims.get("iss")?.as_str()?.to_owned())
}

/// Reads the generated secret from the data dir, creating it (32 random bytes, hex) on first use.
fn generated_secret(data_dir: &Path) -> anyhow::Result<(Vec<u8>, PathBuf)> {
    let path = data_dir.join(GENERATED_SECRET_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => return Ok((text.trim().as_bytes().to_vec(), path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
    }
    fs::create_dir_all(data_dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", data_dir.display()))?;
    let bytes: [u8; 32] = rand::random();
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    // `tidings serve` and `tidings token` started at once on a fresh data dir both come here: the secret is written
    // whole to a draft of its own, then linked into place, which only one of them can do; the other reads the
    // winner's. So neither fails, nor reads a secret half written.
    let draft = data_dir.join(format!("{GENERATED_SECRET_FILE}.{:016x}.draft", rand::random::<u64>()));
    let written = write_private(&draft, &secret);
    let linked = written.as_ref().map(|()| fs::hard_link(&draft, &path));
    let _ = fs::remove_file(&draft);
    let winner = || -> anyhow::Result<(Vec<u8>, PathBuf)> {
        let text = fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        Ok((text.trim().as_bytes().to_vec(), path.clone()))
    };
    match linked {
        Err(e) => Err(anyhow::anyhow!("{e}")),
        Ok(Ok(())) => Ok((secret.into_bytes(), path)),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::AlreadyExists => winner(),
        // A file system without hard links: created in place, which only one process can do either.
        Ok(Err(_)) => match write_private(&path, &secret) {
            Ok(()) => Ok((secret.into_bytes(), path)),
            Err(_) if path.exists() => winner(),
            Err(e) => Err(e),
        },
    }
}

/// Writes a file that only its owner may read.
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
    // On disk before anyone reads it: a power cut must not leave an empty secret the server then refuses.
    file.write_all(contents.as_bytes()).and_then(|()| file.sync_all())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authenticator() -> Authenticator {
        let config = AuthConfig { secret: Some("k".repeat(32)), ..AuthConfig::default() };
        Authenticator::from_config(&config, Path::new("/nonexistent")).expect("valid config")
    }

    #[test]
    fn processes_that_generate_the_secret_at_once_all_get_the_same_one() {
        // Threads stand for processes: each writes a draft of its own, and the link decides.
        let dir = tempfile::tempdir().expect("temp dir");
        let secrets: Vec<Vec<u8>> = std::thread::scope(|scope| {
            let racers: Vec<_> = (0..8).map(|_| scope.spawn(|| generated_secret(dir.path()))).collect();
            racers.into_iter().map(|r| r.join().expect("no panic").expect("a secret").0).collect()
        });
        assert!(secrets.iter().all(|s| s == &secrets[0] && s.len() == 64), "one secret for all");
    }

    #[tokio::test]
    async fn a_minted_token_verifies_with_its_claims() {
        let auth = authenticator();
        let token = auth.mint("alice", &["admin".to_owned()], Duration::from_secs(60)).expect("mint");
        let identity = auth.verify(&token).await.expect("valid token");
        assert_eq!(identity.user_id, "alice");
        assert_eq!(identity.roles, vec!["admin".to_owned()]);
        assert!(identity.expires_at_ms > now_ms());
    }

    #[tokio::test]
    async fn tampered_foreign_and_unsigned_tokens_are_rejected_with_their_reason() {
        let auth = authenticator();
        let token = auth.mint("alice", &[], Duration::from_secs(60)).expect("mint");
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"sub":"mallory","exp":9999999999}"#);
        parts[1] = &forged;
        assert_eq!(auth.verify(&parts.join(".")).await, Err(Rejection::BadSignature));

        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert_eq!(auth.verify(&format!("{none_header}.{forged}.")).await, Err(Rejection::AlgorithmNotAllowed));
        assert_eq!(auth.verify("not a token").await, Err(Rejection::Malformed));

        let other = AuthConfig { secret: Some("z".repeat(32)), ..AuthConfig::default() };
        let other = Authenticator::from_config(&other, Path::new("/nonexistent")).expect("valid config");
        let foreign = other.mint("alice", &[], Duration::from_secs(60)).expect("mint");
        assert_eq!(auth.verify(&foreign).await, Err(Rejection::BadSignature));
    }

    #[tokio::test]
    async fn expired_tokens_are_rejected_as_expired() {
        let auth = authenticator();
        let key = EncodingKey::from_secret("k".repeat(32).as_bytes());
        let claims = Claims { sub: "alice".into(), exp: now_ms() / 1000 - 10, roles: vec![], iat: None };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).expect("encode");
        assert_eq!(auth.verify(&token).await, Err(Rejection::Expired));
        assert_eq!(Rejection::Expired.payload().code, ErrorCode::TokenExpired);
    }

    #[tokio::test]
    async fn a_token_is_refused_from_the_millisecond_of_its_exp() {
        let auth = authenticator();
        // `exp` is the second that has begun: now is at or after it, so the token has expired.
        let token = signed(serde_json::json!({ "sub": "alice", "exp": now_ms() / 1000 }));
        assert_eq!(auth.verify(&token).await, Err(Rejection::Expired));
        // With a leeway, it is accepted for that much longer, and no more.
        let lenient = AuthConfig { secret: Some("k".repeat(32)), leeway_seconds: 5, ..AuthConfig::default() };
        let lenient = Authenticator::from_config(&lenient, Path::new("/nonexistent")).expect("valid config");
        assert!(lenient.verify(&token).await.is_ok());
        let older = signed(serde_json::json!({ "sub": "alice", "exp": now_ms() / 1000 - 5 }));
        assert_eq!(lenient.verify(&older).await, Err(Rejection::Expired));
    }

    /// A token signed with the test key whose claims are `claims`, as written.
    fn signed(claims: serde_json::Value) -> String {
        let key = EncodingKey::from_secret("k".repeat(32).as_bytes());
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).expect("encode")
    }

    #[tokio::test]
    async fn claims_are_judged_as_the_docs_say() {
        let auth = authenticator();
        let later = now_ms() / 1000 + 600;
        // A `sub` that is not a usable user id, and a missing `exp`, are `missing_claim`, not `malformed`.
        for claims in [
            serde_json::json!({ "sub": 42, "exp": later }),
            serde_json::json!({ "sub": "alice" }),
            serde_json::json!({ "sub": "", "exp": later }),
            serde_json::json!({ "sub": "ali\u{0}ce", "exp": later }),
            serde_json::json!({ "sub": "alice\nINFO forged log line", "exp": later }),
            serde_json::json!({ "sub": "\u{1b}[31malice", "exp": later }),
            serde_json::json!({ "sub": "alice", "exp": later, "roles": ["admin", 7] }),
            serde_json::json!({ "sub": "alice", "exp": later, "roles": { "admin": true } }),
        ] {
            assert_eq!(auth.verify(&signed(claims.clone())).await, Err(Rejection::MissingClaim), "{claims}");
        }
        // Roles: an array of strings, one string, or none at all.
        for (roles, expected) in [
            (serde_json::json!(["admin", "clerk"]), vec!["admin", "clerk"]),
            (serde_json::json!("admin"), vec!["admin"]),
            (serde_json::Value::Null, vec![]),
        ] {
            let token = signed(serde_json::json!({ "sub": "alice", "exp": later, "roles": roles }));
            assert_eq!(
                auth.verify(&token).await.map(|i| i.roles),
                Ok(expected.iter().map(|r| (*r).to_owned()).collect())
            );
        }
        // A far-future `exp` is accepted, and its expiry stays a number JavaScript holds exactly.
        let far =
            auth.verify(&signed(serde_json::json!({ "sub": "alice", "exp": u64::MAX / 2 }))).await.expect("valid");
        assert!(far.expires_at_ms <= tidings_protocol::MAX_SAFE_INTEGER, "{}", far.expires_at_ms);
    }

    #[tokio::test]
    async fn an_unconfigured_server_generates_and_then_reuses_its_secret() {
        let dir = std::env::temp_dir().join(format!("tidings-auth-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let first = Authenticator::from_config(&AuthConfig::default(), &dir).expect("generates");
        assert!(first.generated_secret().is_some());
        let token = first.mint("bob", &[], Duration::from_secs(60)).expect("mint");
        let second = Authenticator::from_config(&AuthConfig::default(), &dir).expect("reuses");
        assert_eq!(second.verify(&token).await.map(|i| i.user_id), Ok("bob".to_owned()));
        let _ = fs::remove_dir_all(&dir);
    }
}
