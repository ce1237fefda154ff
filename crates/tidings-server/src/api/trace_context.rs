//! W3C Trace Context for the HTTP API: a request whose `traceparent` header names its caller's span is traced as
//! that span's child, so that a back end's trace goes on through Tidings (and on into its storage spans).
//!
//! Only `traceparent` is read (`tracestate` carries vendors' data Tidings does not use). A header that is not in
//! the form `<version>-<32 hex>-<16 hex>-<2 hex>` (version 00 exactly so; a later version may add fields after
//! these, which are not read; version ff is invalid), or names the all-zero trace or span, is ignored, and the
//! request starts a trace of its own. Whether a request is traced is decided by the sample ratio alone: the
//! caller's sampled flag is not taken (traces.rs of the binary), since anyone may send one.

use axum::http::HeaderMap;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::Context;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Makes `span` a child of the span the request's `traceparent` names, if it names one.
pub(super) fn continue_from(span: &tracing::Span, headers: &HeaderMap) {
    let Some(caller) = headers.get("traceparent").and_then(|v| v.to_str().ok()).and_then(parse) else { return };
    // Without a collector the span is disabled and this does nothing.
    span.set_parent(Context::new().with_remote_span_context(caller));
}

/// The caller's span a `traceparent` value names.
fn parse(value: &str) -> Option<SpanContext> {
    let mut parts = value.trim().split('-');
    let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let more = parts.next().is_some();
    if !hex(version, 2) || version == "ff" || (version == "00" && more) {
        return None;
    }
    if !hex(trace, 32) || !hex(span, 16) || !hex(flags, 2) {
        return None;
    }
    let trace = TraceId::from_hex(trace).ok().filter(|t| *t != TraceId::INVALID)?;
    let span = SpanId::from_hex(span).ok().filter(|s| *s != SpanId::INVALID)?;
    let flags = TraceFlags::new(u8::from_str_radix(flags, 16).ok()? & TraceFlags::SAMPLED.to_u8());
    Some(SpanContext::new(trace, span, flags, true, TraceState::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_names_its_callers_span_or_nothing() {
        let caller = parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").expect("a valid traceparent");
        let later = parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more").expect("a later version");
        assert_eq!(later.span_id(), caller.span_id());
        assert_eq!(caller.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(caller.span_id().to_string(), "00f067aa0ba902b7");
        assert!(caller.is_sampled() && caller.is_remote());
        for bad in [
            "",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert!(parse(bad).is_none(), "{bad:?} names no span");
        }
    }
}
