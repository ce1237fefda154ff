//! Token verification and minting: JWTs signed with HS256, or verified with an RS256/ES256 public key.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tidings_protocol::{now_ms, ErrorCode, ErrorPayload};

use crate::config::AuthConfig;

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
        };
        ErrorPayload::new(code, message).with_detail("reason", self.reason())
    }
}

/// Verifies tokens, and mints them where the server holds the signing secret.
pub struct Authenticator {
    algorithm: Algorithm,
    decoding: DecodingKey,
    encoding: Option<EncodingKey>,
    validation: Validation,
    /// Set when the secret was generated because none was configured: the dev sign-in is allowed then.
    generated: Option<PathBuf>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").field("algorithm", &self.algorithm).field("generated", &self.generated).finish()
    }
}

impl Authenticator {
    /// Builds the authenticator from the config; with no key configured, reads or creates the secret in `data_dir`.
    pub fn from_config(config: &AuthConfig, data_dir: &Path) -> anyhow::Result<Authenticator> {
        if let Some(path) = &config.public_key_file {
            let pem = fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            let (algorithm, decoding) = match config.algorithm.as_deref() {
                Some("RS256") => (Algorithm::RS256, DecodingKey::from_rsa_pem(&pem)?),
                Some("ES256") => (Algorithm::ES256, DecodingKey::from_ec_pem(&pem)?),
                other => anyhow::bail!("auth.algorithm must be RS256 or ES256 with a public key, not {other:?}"),
            };
            return Ok(Self::new(algorithm, decoding, None, config.leeway_seconds, None));
        }
        if let Some(algorithm) = config.algorithm.as_deref().filter(|a| *a != "HS256") {
            anyhow::bail!("auth.algorithm {algorithm} needs auth.public_key_file; a secret signs HS256");
        }
        let (secret, generated) = match &config.secret {
            Some(secret) => (secret.clone().into_bytes(), None),
            None => {
                let (secret, path) = generated_secret(data_dir)?;
                (secret, Some(path))
            }
        };
        anyhow::ensure!(secret.len() >= 32, "auth.secret must be at least 32 bytes long");
        let keys = (DecodingKey::from_secret(&secret), Some(EncodingKey::from_secret(&secret)));
        Ok(Self::new(Algorithm::HS256, keys.0, keys.1, config.leeway_seconds, generated))
    }

    fn new(
        algorithm: Algorithm,
        decoding: DecodingKey,
        encoding: Option<EncodingKey>,
        leeway: u64,
        generated: Option<PathBuf>,
    ) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.set_required_spec_claims(&["sub", "exp"]);
        validation.leeway = leeway;
        validation.validate_nbf = true;
        Authenticator { algorithm, decoding, encoding, validation, generated }
    }

    /// The file of the generated secret, when the server made one because none was configured.
    pub fn generated_secret(&self) -> Option<&Path> {
        self.generated.as_deref()
    }

    /// Checks a token and says whom it names.
    pub fn verify(&self, token: &str) -> Result<Identity, Rejection> {
        // The header is checked by hand first, so that `alg: none` and other algorithms get their own reason
        // rather than a parse error.
        match header_algorithm(token) {
            None => return Err(Rejection::Malformed),
            Some(alg) if alg != algorithm_name(self.algorithm) => return Err(Rejection::AlgorithmNotAllowed),
            Some(_) => {}
        }
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => Rejection::BadSignature,
                ErrorKind::ExpiredSignature => Rejection::Expired,
                ErrorKind::ImmatureSignature => Rejection::NotYetValid,
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => Rejection::AlgorithmNotAllowed,
                ErrorKind::MissingRequiredClaim(_) | ErrorKind::InvalidClaimFormat(_) => Rejection::MissingClaim,
                // The claims are JSON of the wrong shape (a numeric `sub`, no `exp`): a claim is missing or wrong.
                ErrorKind::Json(e) if e.is_data() => Rejection::MissingClaim,
                _ => Rejection::Malformed,
            })?;
        let claims = data.claims;
        // A user id is 1 to 256 characters with no control character: NUL cannot be stored by PostgreSQL, and a
        // newline or an escape would let a token write lines of its own into the server's log.
        if claims.sub.is_empty() || claims.sub.chars().count() > 256 || claims.sub.chars().any(char::is_control) {
            return Err(Rejection::MissingClaim);
        }
        // jsonwebtoken compares whole seconds and accepts `exp == now`, so a token was good for up to a second
        // after its expiry (and a session just told TOKEN_EXPIRED could sign in again with it). RFC 7519 says the
        // current time must be before `exp`: compared here in milliseconds, with only the configured leeway.
        let leeway_ms = self.validation.leeway.saturating_mul(1000);
        if now_ms() >= claims.exp.saturating_mul(1000).saturating_add(leeway_ms) {
            return Err(Rejection::Expired);
        }
        // Milliseconds, within what JavaScript holds exactly, however far in the future `exp` is.
        let expires_at_ms = claims.exp.saturating_mul(1000).min(tidings_protocol::MAX_SAFE_INTEGER);
        Ok(Identity { user_id: claims.sub, roles: claims.roles, expires_at_ms })
    }

    /// Signs a token for `user` with `roles`, valid for `ttl`; only a server that holds an HS256 secret can.
    pub fn mint(&self, user: &str, roles: &[String], ttl: Duration) -> anyhow::Result<String> {
        let Some(key) = &self.encoding else {
            anyhow::bail!("this server verifies tokens with a public key; sign them with the matching private key");
        };
        let now = now_ms() / 1000;
        let claims =
            Claims { sub: user.to_owned(), exp: now + ttl.as_secs().max(1), roles: roles.to_vec(), iat: Some(now) };
        Ok(jsonwebtoken::encode(&Header::new(self.algorithm), &claims, key)?)
    }
}

fn algorithm_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::RS256 => "RS256",
        Algorithm::ES256 => "ES256",
        _ => "HS256",
    }
}

/// The `alg` of a token's header, if the header is base64url JSON with a string `alg`.
fn header_algorithm(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let bytes = URL_SAFE_NO_PAD.decode(header.trim_end_matches('=')).ok()?;
    let header: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Some(header.get("alg")?.as_str()?.to_owned())
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
    write_private(&path, &secret)?;
    Ok((secret.into_bytes(), path))
}

/// Writes a file that only its owner may read.
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
    file.write_all(contents.as_bytes())?;
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
    fn a_minted_token_verifies_with_its_claims() {
        let auth = authenticator();
        let token = auth.mint("alice", &["admin".to_owned()], Duration::from_secs(60)).expect("mint");
        let identity = auth.verify(&token).expect("valid token");
        assert_eq!(identity.user_id, "alice");
        assert_eq!(identity.roles, vec!["admin".to_owned()]);
        assert!(identity.expires_at_ms > now_ms());
    }

    #[test]
    fn tampered_foreign_and_unsigned_tokens_are_rejected_with_their_reason() {
        let auth = authenticator();
        let token = auth.mint("alice", &[], Duration::from_secs(60)).expect("mint");
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"sub":"mallory","exp":9999999999}"#);
        parts[1] = &forged;
        assert_eq!(auth.verify(&parts.join(".")), Err(Rejection::BadSignature));

        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert_eq!(auth.verify(&format!("{none_header}.{forged}.")), Err(Rejection::AlgorithmNotAllowed));
        assert_eq!(auth.verify("not a token"), Err(Rejection::Malformed));

        let other = AuthConfig { secret: Some("z".repeat(32)), ..AuthConfig::default() };
        let other = Authenticator::from_config(&other, Path::new("/nonexistent")).expect("valid config");
        let foreign = other.mint("alice", &[], Duration::from_secs(60)).expect("mint");
        assert_eq!(auth.verify(&foreign), Err(Rejection::BadSignature));
    }

    #[test]
    fn expired_tokens_are_rejected_as_expired() {
        let auth = authenticator();
        let key = EncodingKey::from_secret("k".repeat(32).as_bytes());
        let claims = Claims { sub: "alice".into(), exp: now_ms() / 1000 - 10, roles: vec![], iat: None };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).expect("encode");
        assert_eq!(auth.verify(&token), Err(Rejection::Expired));
        assert_eq!(Rejection::Expired.payload().code, ErrorCode::TokenExpired);
    }

    #[test]
    fn a_token_is_refused_from_the_millisecond_of_its_exp() {
        let auth = authenticator();
        // `exp` is the second that has begun: now is at or after it, so the token has expired.
        let token = signed(serde_json::json!({ "sub": "alice", "exp": now_ms() / 1000 }));
        assert_eq!(auth.verify(&token), Err(Rejection::Expired));
        // With a leeway, it is accepted for that much longer, and no more.
        let lenient = AuthConfig { secret: Some("k".repeat(32)), leeway_seconds: 5, ..AuthConfig::default() };
        let lenient = Authenticator::from_config(&lenient, Path::new("/nonexistent")).expect("valid config");
        assert!(lenient.verify(&token).is_ok());
        let older = signed(serde_json::json!({ "sub": "alice", "exp": now_ms() / 1000 - 5 }));
        assert_eq!(lenient.verify(&older), Err(Rejection::Expired));
    }

    /// A token signed with the test key whose claims are `claims`, as written.
    fn signed(claims: serde_json::Value) -> String {
        let key = EncodingKey::from_secret("k".repeat(32).as_bytes());
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).expect("encode")
    }

    #[test]
    fn claims_are_judged_as_the_docs_say() {
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
        ] {
            assert_eq!(auth.verify(&signed(claims.clone())), Err(Rejection::MissingClaim), "{claims}");
        }
        // A far-future `exp` is accepted, and its expiry stays a number JavaScript holds exactly.
        let far = auth.verify(&signed(serde_json::json!({ "sub": "alice", "exp": u64::MAX / 2 }))).expect("valid");
        assert!(far.expires_at_ms <= tidings_protocol::MAX_SAFE_INTEGER, "{}", far.expires_at_ms);
    }

    #[test]
    fn an_unconfigured_server_generates_and_then_reuses_its_secret() {
        let dir = std::env::temp_dir().join(format!("tidings-auth-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let first = Authenticator::from_config(&AuthConfig::default(), &dir).expect("generates");
        assert!(first.generated_secret().is_some());
        let token = first.mint("bob", &[], Duration::from_secs(60)).expect("mint");
        let second = Authenticator::from_config(&AuthConfig::default(), &dir).expect("reuses");
        assert_eq!(second.verify(&token).map(|i| i.user_id), Ok("bob".to_owned()));
        let _ = fs::remove_dir_all(&dir);
    }
}
