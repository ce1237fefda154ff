//! Calls to a running server's HTTP API with an API key, shared by `tidings notify` and `tidings admin`.

use anyhow::Context;

/// Sends `method path` with the key (and a JSON body), and returns the answer's text; a non-2xx answer is an
/// error that quotes the server.
pub fn call(base: &str, api_key: &str, method: &str, path: &str, body: Option<String>) -> anyhow::Result<String> {
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let result = match (method, body) {
        ("POST", Some(body)) => {
            agent.post(&url).header("x-api-key", api_key).header("content-type", "application/json").send(body)
        }
        ("POST", None) => agent.post(&url).header("x-api-key", api_key).send_empty(),
        ("DELETE", _) => agent.delete(&url).header("x-api-key", api_key).call(),
        _ => agent.get(&url).header("x-api-key", api_key).call(),
    };
    let mut response = result.with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let text = response.body_mut().read_to_string().context("cannot read the answer")?;
    anyhow::ensure!(status.is_success(), "the server refused ({status}): {}", text.trim());
    Ok(text)
}
