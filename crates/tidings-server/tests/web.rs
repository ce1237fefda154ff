//! The orders board's files: served at `/` from the binary, with a policy that lets only them run, or not at all.

mod common;

use common::rest::send;
use common::TestServer;

#[tokio::test]
async fn the_page_and_its_modules_are_served_from_the_binary_with_a_content_security_policy() {
    let server = TestServer::start().await;
    let page = send(server.addr, "GET", "/", &[], b"").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(page.body.contains(r#"<script type="module" src="/assets/app.js">"#), "{}", page.body);
    let policy = page.header("content-security-policy").expect("a CSP");
    assert!(policy.contains("default-src 'self'") && policy.contains("frame-ancestors 'none'"), "{policy}");

    for (name, content_type) in
        [("app.js", "text/javascript"), ("tidings.js", "text/javascript"), ("style.css", "text/css")]
    {
        let asset = send(server.addr, "GET", &format!("/assets/{name}"), &[], b"").await;
        assert_eq!(asset.status, 200, "{name}");
        assert!(asset.header("content-type").is_some_and(|t| t.starts_with(content_type)), "{name}");
        assert_eq!(asset.header("x-content-type-options"), Some("nosniff"));
    }
    // The SDK's bundle, as the page imports it.
    let sdk = send(server.addr, "GET", "/assets/tidings.js", &[], b"").await;
    assert!(sdk.body.contains("createClient"));

    for path in ["/assets/nothing.js", "/assets/..%2FCargo.toml", "/assets/"] {
        assert_eq!(send(server.addr, "GET", path, &[], b"").await.status, 404, "{path}");
    }
}

#[tokio::test]
async fn with_web_page_off_the_root_is_not_routed() {
    let server = TestServer::start_with(|c| c.web_page = false).await;
    assert_eq!(send(server.addr, "GET", "/", &[], b"").await.status, 404);
    assert_eq!(send(server.addr, "GET", "/assets/app.js", &[], b"").await.status, 404);
    assert_eq!(send(server.addr, "GET", "/healthz", &[], b"").await.status, 200);
}
