//! The keys that check a token's signature: a fixed one (a shared secret, a public key file), or the key set an
//! identity provider publishes at a JWKS URL, fetched over HTTP(S) and cached.
//!
//! A key set is read from its cache on every sign-in. It is fetched again when its cache age (the response's
//! `Cache-Control: max-age`, else five minutes) has passed, in the background, without holding up the sign-in that
//! noticed; and at once when a token names a key id the cache does not hold (a provider rotated its keys), at most
//! once per [`REFETCH_AFTER`], so that tokens with made-up key ids cannot turn the server into a client that hammers
//! the provider. Only public keys are taken from a key set: an `oct` (shared secret) key there is ignored, since
//! anyone who can read the URL would hold it.

use std::str::FromStr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use tracing::{info, warn};

use super::Rejection;

/// The soonest a key set is fetched again for a key id it does not hold.
pub const REFETCH_AFTER: Duration = Duration::from_secs(10);
/// How long a key set is kept when its response says nothing of caching.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
/// The bounds of a key set's cache age, whatever its response says.
const MAX_AGE_BOUNDS: (Duration, Duration) = (Duration::from_secs(30), Duration::from_secs(24 * 3600));
/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest key set read.
const MAX_BODY_BYTES: u64 = 1024 * 1024;

/// The algorithms a key set's keys may sign with: asymmetric ones only.
const PUBLIC_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Where a provider's keys come from.
pub enum Keys {
    /// One key of one algorithm: an HS256 secret, or an RS256/ES256 public key from a file.
    Fixed(Algorithm, DecodingKey),
    /// The keys published at a JWKS URL.
    Published(Arc<KeySet>),
}

impl Keys {
    /// The key that checks a token signed with `alg` under key id `kid`, or why there is none.
    pub async fn key(&self, alg: Algorithm, kid: Option<&str>) -> Result<DecodingKey, Rejection> {
        match self {
            Keys::Fixed(algorithm, key) if *algorithm == alg => Ok(key.clone()),
            Keys::Fixed(..) => Err(Rejection::AlgorithmNotAllowed),
            Keys::Published(set) => set.key(alg, kid).await,
        }
    }
}

/// One key of a key set, with the algorithm it signs with.
struct Published {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

#[derive(Default)]
struct Cache {
    keys: Vec<Published>,
    /// When the keys were fetched, and how long they are good for.
    fetched: Option<(Instant, Duration)>,
    /// When a fetch for an unknown key id was last tried, to hold those to one per [`REFETCH_AFTER`].
    tried: Option<Instant>,
    /// When a refresh of a stale set was last tried: a provider that is down is asked again only so often.
    refreshed: Option<Instant>,
}

/// The keys an identity provider publishes at a URL, cached.
pub struct KeySet {
    url: String,
    cache: RwLock<Cache>,
    /// Held while fetching: one fetch at a time; a sign-in that waits for one reads its result.
    fetching: tokio::sync::Mutex<()>,
}

impl KeySet {
    /// The key set at `url`, not fetched yet.
    pub fn new(url: &str) -> Arc<KeySet> {
        Arc::new(KeySet { url: url.to_owned(), cache: RwLock::default(), fetching: tokio::sync::Mutex::new(()) })
    }

    /// The key for a token signed with `alg` under `kid`: from the cache; fetched first when the cache has no such
    /// key and may be fetched again.
    pub async fn key(self: &Arc<Self>, alg: Algorithm, kid: Option<&str>) -> Result<DecodingKey, Rejection> {
        if !PUBLIC_ALGORITHMS.contains(&alg) {
            return Err(Rejection::AlgorithmNotAllowed);
        }
        let (found, stale) = self.look_up(alg, kid);
        match found {
            Some(key) => {
                if stale {
                    let set = Arc::clone(self);
                    tokio::spawn(async move { set.refresh().await });
                }
                Ok(key)
            }
            None => {
                self.fetch_for_unknown_key().await;
                self.look_up(alg, kid).0.ok_or(Rejection::UnknownKey)
            }
        }
    }

    /// Fetches the key set now; for a server starting, so that its first sign-in finds the keys.
    pub async fn prefetch(&self) {
        self.refresh().await;
    }

    /// The key if cached, and whether the cache is stale and due for a refresh: a stale set whose refresh was tried
    /// a moment ago (its provider may be down) is not, so that sign-ins do not start a refresh each.
    fn look_up(&self, alg: Algorithm, kid: Option<&str>) -> (Option<DecodingKey>, bool) {
        let cache = self.cache.read().unwrap_or_else(PoisonError::into_inner);
        let key = cache
            .keys
            .iter()
            .find(|k| k.algorithm == alg && (kid.is_none() || k.kid.as_deref() == kid))
            .map(|k| k.key.clone());
        let stale = cache.fetched.is_none_or(|(at, max_age)| at.elapsed() >= max_age);
        let tried = cache.refreshed.is_some_and(|at| at.elapsed() < REFETCH_AFTER);
        (key, stale && !tried)
    }

    /// Fetches the key set for a key id it did not hold, unless that was tried less than [`REFETCH_AFTER`] ago
    /// (a caller that waited for another's fetch then reads its result).
    async fn fetch_for_unknown_key(&self) {
        let _turn = self.fetching.lock().await;
        {
            let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
            if cache.tried.is_some_and(|at| at.elapsed() < REFETCH_AFTER) {
                return;
            }
            cache.tried = Some(Instant::now());
        }
        self.fetch().await;
    }

    /// Fetches the key set when it is stale, unless another caller just did.
    async fn refresh(&self) {
        let _turn = self.fetching.lock().await;
        {
            let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
            let fresh = cache.fetched.is_some_and(|(at, max_age)| at.elapsed() < max_age);
            if fresh || cache.refreshed.is_some_and(|at| at.elapsed() < REFETCH_AFTER) {
                return;
            }
            cache.refreshed = Some(Instant::now());
        }
        self.fetch().await;
    }

    /// Fetches the key set; a failure keeps the keys held.
    async fn fetch(&self) {
        let url = self.url.clone();
        let fetched = tokio::task::spawn_blocking(move || fetch(&url)).await;
        match fetched {
            Ok(Ok((keys, max_age))) => {
                info!(url = %self.url, keys = keys.len(), "fetched the identity provider's keys");
                let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
                cache.keys = keys;
                cache.fetched = Some((Instant::now(), max_age));
            }
            // The keys held stay in use: a provider that is down for a moment does not sign everyone out.
            Ok(Err(error)) => warn!(url = %self.url, %error, "cannot fetch the identity provider's keys"),
            Err(error) => warn!(url = %self.url, %error, "the fetch of the identity provider's keys failed"),
        }
    }
}

/// Fetches a key set: its usable keys, and how long it may be cached.
fn fetch(url: &str) -> anyhow::Result<(Vec<Published>, Duration)> {
    let agent: ureq::Agent =
        ureq::Agent::config_builder().timeout_global(Some(FETCH_TIMEOUT)).http_status_as_error(true).build().into();
    let mut response = agent.get(url).call()?;
    let max_age = response
        .headers()
        .get("cache-control")
        .and_then(|value| value.to_str().ok())
        .and_then(max_age_of)
        .unwrap_or(DEFAULT_MAX_AGE)
        .clamp(MAX_AGE_BOUNDS.0, MAX_AGE_BOUNDS.1);
    let body = response.body_mut().with_config().limit(MAX_BODY_BYTES).read_to_vec()?;
    let set: JwkSet = serde_json::from_slice(&body)?;
    Ok((set.keys.iter().filter_map(usable).collect(), max_age))
}

/// The `max-age` of a `Cache-Control` header.
fn max_age_of(header: &str) -> Option<Duration> {
    header.split(',').find_map(|directive| {
        let seconds = directive.trim().strip_prefix("max-age=")?;
        seconds.trim().parse().ok().map(Duration::from_secs)
    })
}

/// A key of a key set that can check signatures here, with its algorithm: the one it names, or the one its curve
/// implies (RSA keys without `alg` are taken as RS256). Shared secrets are never taken from a key set.
fn usable(jwk: &Jwk) -> Option<Published> {
    let named = jwk.common.key_algorithm.and_then(|alg| Algorithm::from_str(&alg.to_string()).ok());
    let implied = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
        AlgorithmParameters::EllipticCurve(params) => match params.curve {
            EllipticCurve::P256 => Some(Algorithm::ES256),
            EllipticCurve::P384 => Some(Algorithm::ES384),
            _ => None,
        },
        AlgorithmParameters::OctetKeyPair(_) => Some(Algorithm::EdDSA),
        _ => None,
    };
    let algorithm = named.or(implied).filter(|alg| PUBLIC_ALGORITHMS.contains(alg))?;
    // A key that names an algorithm of another family than its own is refused as well.
    let fits = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => matches!(
            algorithm,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        ),
        _ => Some(algorithm) == implied,
    };
    if !fits {
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(Published { kid: jwk.common.key_id.clone(), algorithm, key })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_age_comes_from_max_age() {
        assert_eq!(max_age_of("public, max-age=3600, must-revalidate"), Some(Duration::from_secs(3600)));
        assert_eq!(max_age_of("no-store"), None);
    }

    #[test]
    fn shared_secrets_are_never_taken_from_a_key_set() {
        let set: JwkSet = serde_json::from_value(serde_json::json!({ "keys": [
            { "kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", "alg": "HS256", "kid": "shared" },
            { "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "ed" },
        ]}))
        .expect("a key set");
        let usable: Vec<(Option<String>, Algorithm)> =
            set.keys.iter().filter_map(usable).map(|k| (k.kid, k.algorithm)).collect();
        assert_eq!(usable, [(Some("ed".to_owned()), Algorithm::EdDSA)]);
    }
}
