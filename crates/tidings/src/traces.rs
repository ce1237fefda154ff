//! Traces: when `traces.otlp_endpoint` is set, the server's spans (a WebSocket request, an HTTP request, a
//! storage operation, a webhook delivery) go to an OpenTelemetry collector over OTLP/HTTP, as JSON, in batches
//! from a thread of their own, so no request waits on the collector.
//!
//! The server's spans are at DEBUG, and only this layer asks for them: without a collector they are never built.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tidings_server::config::TracesConfig;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::Layer;

/// The spans the collector receives: the server's, down to DEBUG.
fn wanted() -> Targets {
    Targets::new().with_target("tidings_server", tracing::Level::DEBUG)
}

/// The exporter for `config` on node `node`, when a collector is configured: the layer to add to the subscriber,
/// and the provider, to flush at exit.
pub fn layer<S>(config: &TracesConfig, node: &str) -> anyhow::Result<Option<(impl Layer<S>, SdkTracerProvider)>>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    let Some(endpoint) = &config.otlp_endpoint else { return Ok(None) };
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson)
        .with_endpoint(url)
        .build()
        .map_err(|e| anyhow::anyhow!("traces.otlp_endpoint: {e}"))?;
    let resource = Resource::builder()
        .with_service_name(config.service_name.clone())
        .with_attributes([
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            KeyValue::new("service.instance.id", node.to_owned()),
        ])
        .build();
    let provider = SdkTracerProvider::builder()
        // By the trace id alone, not by a caller's flag: a request's `traceparent` may come from anyone, and must not
        // force every request into the collector nor keep one out. Every span of one trace shares its id, and so
        // its fate.
        .with_sampler(Sampler::TraceIdRatioBased(config.sample_ratio))
        .with_resource(resource)
        .with_batch_exporter(exporter)
        .build();
    let tracer = provider.tracer("tidings");
    let layer = tracing_opentelemetry::layer().with_tracer(tracer).with_filter(wanted());
    Ok(Some((layer, provider)))
}
