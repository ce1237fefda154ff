//! An identity provider for tests: signing keys (ES256, EdDSA, and RS256 from a fixture, as no crate at hand makes
//! RSA keys) and their JWKS served over HTTP on loopback, whose published keys a test rotates while the server runs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tidings_protocol::now_ms;

pub const ISSUER: &str = "https://id.example.test/";
pub const AUDIENCE: &str = "tidings-test";
pub const INTERNAL_SECRET: &str = "an-internal-services-secret-of-32-bytes!";

/// A signing key of the identity provider, with its public half as a JWK.
pub struct SigningKey {
    kid: String,
    algorithm: Algorithm,
    private: EncodingKey,
    jwk: Value,
}

impl SigningKey {
    pub fn es256(kid: &str) -> SigningKey {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("a P-256 key");
        // The uncompressed point: 0x04, then x and y.
        let point = pair.public_key_raw();
        let jwk = json!({ "kty": "EC", "crv": "P-256", "use": "sig", "kid": kid,
                          "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..]) });
        let private = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).expect("a PKCS#8 key");
        SigningKey { kid: kid.to_owned(), algorithm: Algorithm::ES256, private, jwk }
    }

    pub fn ed25519(kid: &str) -> SigningKey {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("an Ed25519 key");
        let jwk = json!({ "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "kid": kid,
                          "x": URL_SAFE_NO_PAD.encode(pair.public_key_raw()) });
        let private = EncodingKey::from_ed_pem(pair.serialize_pem().as_bytes()).expect("a PKCS#8 key");
        SigningKey { kid: kid.to_owned(), algorithm: Algorithm::EdDSA, private, jwk }
    }

    /// The RSA key of `fixtures/rs256-private.pk8.pem`, made with `openssl genpkey -algorithm RSA`, and its public
    /// half (`fixtures/rs256-public.jwk.json`: the modulus and exponent, base64url).
    pub fn rs256(kid: &str) -> SigningKey {
        let private = include_bytes!("../fixtures/rs256-private.pk8.pem");
        let mut jwk: Value = serde_json::from_str(include_str!("../fixtures/rs256-public.jwk.json")).expect("a JWK");
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        jwk["alg"] = json!("RS256");
        let private = EncodingKey::from_rsa_pem(private).expect("a PKCS#8 RSA key");
        SigningKey { kid: kid.to_owned(), algorithm: Algorithm::RS256, private, jwk }
    }

    /// A token of this key with `claims` over the usual ones (issuer, audience, an hour of life, roles).
    pub fn token(&self, user: &str, claims: Value) -> String {
        let mut all = json!({ "sub": user, "iss": ISSUER, "aud": AUDIENCE, "exp": now_ms() / 1000 + 3600,
                              "realm_access": { "roles": ["admin"] } });
        for (name, value) in claims.as_object().expect("claims") {
            all[name] = value.clone();
        }
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &all, &self.private).expect("a token")
    }
}

/// The provider's key set, served at `/jwks.json` with a day of cache, and how often it was fetched.
pub struct Provider {
    pub url: String,
    pub keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
}

impl Provider {
    pub async fn start(keys: &[&SigningKey]) -> Provider {
        let served: Arc<Mutex<Vec<Value>>> = Arc::new(Mutex::new(keys.iter().map(|k| k.jwk.clone()).collect()));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (set, count) = (Arc::clone(&served), Arc::clone(&fetches));
        let app = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                count.fetch_add(1, Ordering::SeqCst);
                let keys = set.lock().expect("keys").clone();
                async move { ([("cache-control", "public, max-age=86400")], axum::Json(json!({ "keys": keys }))) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let url = format!("http://{}/jwks.json", listener.local_addr().expect("an address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Provider { url, keys: served, fetches }
    }

    /// Publishes these keys from now on, and only these.
    pub fn rotate(&self, keys: &[&SigningKey]) {
        *self.keys.lock().expect("keys") = keys.iter().map(|k| k.jwk.clone()).collect();
    }

    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}
