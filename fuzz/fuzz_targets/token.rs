//! Token verification on arbitrary tokens: it never panics, lets nothing in that the server did not sign, and an
//! accepted token names exactly the user, roles and expiry its claims say.
//!
//! The first byte of the input picks how the rest is used:
//! - `f`: the rest is a token as a client would send it; without the server's key it must be refused;
//! - `m`: the rest mutates a token the server signed (pairs of position and byte, a byte above 127 deletes);
//!   if the result is accepted, it says the same as the original;
//! - `s`: the rest is a header and claims on two lines, signed with the server's key as a forger who stole it
//!   would; if accepted, the identity is what the claims say.

#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let auth = &tidings_fuzz::shared().auth;
    let verify = |token: &str| tidings_fuzz::runtime().block_on(auth.verify(token));
    match mode {
        b'f' => {
            let token = String::from_utf8_lossy(rest);
            assert!(verify(&token).is_err(), "a token the server never signed was accepted: {token}");
        }
        b'm' => {
            let original = original();
            let mut token = original.as_bytes().to_vec();
            for pair in rest.chunks_exact(2) {
                let at = usize::from(pair[0]) % token.len().max(1);
                match pair[1] {
                    byte @ 0..=127 if at < token.len() => token[at] = byte,
                    0..=127 => token.push(pair[1]),
                    _ if at < token.len() => {
                        token.remove(at);
                    }
                    _ => {}
                }
            }
            let token = String::from_utf8_lossy(&token);
            if let Ok(identity) = verify(&token) {
                let expected = verify(original).expect("the original is accepted");
                assert_eq!(identity, expected, "a changed token was accepted as someone else: {token}");
            }
        }
        b's' => {
            let Ok(text) = std::str::from_utf8(rest) else { return };
            let Some((header, claims)) = text.split_once('\n') else { return };
            let message = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
            let key = EncodingKey::from_secret(tidings_fuzz::SECRET.as_bytes());
            let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256).expect("signed");
            let token = format!("{message}.{signature}");
            if let Ok(identity) = verify(&token) {
                let claims: Value = serde_json::from_str(claims).expect("accepted claims are JSON");
                assert_eq!(claims["sub"].as_str(), Some(identity.user_id.as_str()), "the user is not the sub");
                let exp = claims["exp"].as_u64().expect("accepted claims have a whole exp");
                // In milliseconds, within what JavaScript holds exactly (a far-future exp is capped there).
                let expected = exp.saturating_mul(1000).min(tidings_protocol::MAX_SAFE_INTEGER);
                assert_eq!(identity.expires_at_ms, expected, "the expiry is not the exp");
                assert!(!identity.user_id.chars().any(char::is_control), "a user id with a control character");
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs();
                assert!(exp >= now, "an expired token was accepted: exp {exp}, now {now}");
                // An array of strings, or one string; absent or null is none.
                let roles: Vec<&str> = match &claims["roles"] {
                    Value::Array(r) => r.iter().map(|role| role.as_str().expect("roles are strings")).collect(),
                    Value::String(one) => vec![one.as_str()],
                    _ => Vec::new(),
                };
                assert_eq!(identity.roles, roles, "the roles are not the claims' roles");
            }
        }
        _ => {}
    }
});

/// A token the server signed, once per process.
fn original() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| tidings_fuzz::token("alice", &["admin"]))
}
