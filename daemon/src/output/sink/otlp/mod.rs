//! The OTLP sink: batches of lines as OTLP/HTTP logs requests (protobuf, gzip by default), POSTed
//! to a collector with the headers it asks for (an auth token) and over TLS with its CA. What the
//! OTLP specification says is transient (429, 502, 503, 504, no answer) is retried with backoff,
//! honouring `Retry-After`; any other refusal is logged once and the batch dropped and counted.
mod record;

use std::{io::Read as _, io::Write as _, path::PathBuf, sync::Arc, time::Duration};

use opentelemetry_proto::tonic::{
    collector::logs::v1::ExportLogsServiceResponse,
    common::v1::{any_value::Value, InstrumentationScope},
    resource::v1::Resource,
};
use prost::Message as _;

use super::{
    queue::Line,
    worker::{Delivery, Destination},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    Gzip,
    None,
}

#[derive(Debug, Clone)]
pub struct OtlpOptions {
    /// The collector's base URL (`http://collector:4318`, `/v1/logs` is added) or the full URL
    /// of its logs path.
    pub endpoint: String,
    pub headers: Vec<(String, String)>,
    /// CA certificates (PEM) that sign the collector's certificate, instead of the built-in
    /// public roots.
    pub ca_file: Option<PathBuf>,
    pub compression: Compression,
    pub timeout: Duration,
    /// `host.name` of the resource.
    pub node: String,
}

#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("--otlp-endpoint {0:?} is not an http:// or https:// URL")]
    Endpoint(String),
    #[error("reading the CA file {path}: {source}")]
    CaRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the CA file {path} holds no PEM certificate{detail}")]
    CaEmpty { path: PathBuf, detail: String },
    #[error("--otlp-header {0:?} is not NAME=VALUE")]
    Header(String),
}

pub struct OtlpSink {
    agent: ureq::Agent,
    url: String,
    headers: Vec<(String, String)>,
    gzip: bool,
    resource: Resource,
    scope: InstrumentationScope,
    /// The records (a ScopeLogs' fields), the request's protobuf, and its gzipped body; reused
    /// from batch to batch.
    scope_logs: Vec<u8>,
    encoded: Vec<u8>,
    gzipped: Vec<u8>,
}

impl OtlpSink {
    pub fn new(options: OtlpOptions) -> Result<Self, OtlpError> {
        let url = logs_url(&options.endpoint)?;
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(path) = &options.ca_file {
            tls = tls.root_certs(ureq::tls::RootCerts::Specific(Arc::new(read_ca(path)?)));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(options.timeout))
            // Statuses are answers to act on (retry, refuse), not errors.
            .http_status_as_error(false)
            .user_agent(concat!("sealwatch/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls.build())
            .build()
            .into();
        let resource = Resource {
            attributes: vec![
                record::key_value("host.name", Value::StringValue(options.node.clone())),
                record::key_value("service.name", Value::StringValue("sealwatch".into())),
                record::key_value(
                    "service.version",
                    Value::StringValue(env!("CARGO_PKG_VERSION").into()),
                ),
            ],
            ..Resource::default()
        };
        Ok(OtlpSink {
            agent,
            url,
            headers: options.headers,
            gzip: options.compression == Compression::Gzip,
            resource,
            scope: InstrumentationScope {
                name: "sealwatch".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                ..InstrumentationScope::default()
            },
            scope_logs: Vec::new(),
            encoded: Vec::new(),
            gzipped: Vec::new(),
        })
    }

    /// The request body: an `ExportLogsServiceRequest` with one ResourceLogs and one ScopeLogs
    /// holding a LogRecord per line, gzipped unless told not to.
    ///
    /// Each record is encoded once, and the envelope around the records is written with
    /// prost's field encoders: encoding the nested request as one message made prost compute
    /// every record's length again at each level above it (a fifth of the sink's CPU).
    fn encode(&mut self, lines: &[Line]) {
        use prost::encoding::WireType::LengthDelimited;
        use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, message};
        let observed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        // ScopeLogs: scope (1), log_records (2, repeated).
        let scope_logs = &mut self.scope_logs;
        scope_logs.clear();
        message::encode(1, &self.scope, scope_logs);
        for line in lines {
            message::encode(2, &record::log_record(line, observed), scope_logs);
        }
        // The request: resource_logs (1) = { resource (1), scope_logs (2) }, its length known
        // beforehand so the records are copied once.
        let scope_len = scope_logs.len() as u64;
        let resource_logs_len = message::encoded_len(1, &self.resource)
            + key_len(2)
            + encoded_len_varint(scope_len)
            + scope_logs.len();
        let request = &mut self.encoded;
        request.clear();
        encode_key(1, LengthDelimited, request);
        encode_varint(resource_logs_len as u64, request);
        message::encode(1, &self.resource, request);
        encode_key(2, LengthDelimited, request);
        encode_varint(scope_len, request);
        request.extend_from_slice(scope_logs);
        if !self.gzip {
            return;
        }
        self.gzipped.clear();
        let mut gz = flate2::write::GzEncoder::new(
            std::mem::take(&mut self.gzipped),
            flate2::Compression::fast(),
        );
        // Writing into a Vec cannot fail.
        let _ = gz.write_all(&self.encoded);
        self.gzipped = gz.finish().unwrap_or_default();
    }
}

impl Destination for OtlpSink {
    fn kind(&self) -> super::SinkKind {
        super::SinkKind::Otlp
    }

    fn deliver(&mut self, lines: &[Line]) -> Delivery {
        self.encode(lines);
        let body = if self.gzip {
            &self.gzipped
        } else {
            &self.encoded
        };
        let mut request = self
            .agent
            .post(&self.url)
            .header("content-type", "application/x-protobuf");
        if self.gzip {
            request = request.header("content-encoding", "gzip");
        }
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let mut response = match request.send(&body[..]) {
            Ok(response) => response,
            Err(err) => {
                return Delivery::Retry {
                    reason: format!("POST {}: {err}", self.url),
                    after: None,
                }
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut answer = Vec::new();
        let _ = response
            .body_mut()
            .as_reader()
            .take(64 * 1024)
            .read_to_end(&mut answer);
        match status {
            200..=299 => partial_success(&answer),
            // The statuses OTLP/HTTP names as retryable.
            429 | 502 | 503 | 504 => Delivery::Retry {
                reason: format!("POST {}: HTTP {status}", self.url),
                after: retry_after,
            },
            _ => Delivery::Rejected {
                reason: format!("POST {}: HTTP {status}: {}", self.url, excerpt(&answer)),
            },
        }
    }
}

/// A 2xx answer may still say that some records were refused (OTLP partial success).
fn partial_success(answer: &[u8]) -> Delivery {
    let Ok(response) = ExportLogsServiceResponse::decode(answer) else {
        return Delivery::Delivered;
    };
    match response.partial_success {
        Some(partial) if partial.rejected_log_records > 0 => Delivery::Partial {
            rejected: partial.rejected_log_records as u64,
            reason: format!("collector rejected records: {}", partial.error_message),
        },
        _ => Delivery::Delivered,
    }
}

/// The first printable part of an error answer, for the log.
fn excerpt(answer: &[u8]) -> String {
    let text = String::from_utf8_lossy(answer);
    let mut short: String = text
        .chars()
        .take(200)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if short.trim().is_empty() {
        short = "(no explanation in the answer)".into();
    }
    short.trim().to_string()
}

/// `http://host:4318` → `http://host:4318/v1/logs`; a URL with a path is taken as it is.
fn logs_url(endpoint: &str) -> Result<String, OtlpError> {
    let rest = endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"))
        .filter(|rest| !rest.is_empty() && !rest.starts_with('/'))
        .ok_or_else(|| OtlpError::Endpoint(endpoint.to_string()))?;
    Ok(match rest.find('/') {
        Some(slash) if rest.len() > slash + 1 => endpoint.to_string(),
        _ => format!("{}/v1/logs", endpoint.trim_end_matches('/')),
    })
}

fn read_ca(path: &std::path::Path) -> Result<Vec<ureq::tls::Certificate<'static>>, OtlpError> {
    let pem = std::fs::read(path).map_err(|source| OtlpError::CaRead {
        path: path.to_path_buf(),
        source,
    })?;
    let mut certificates = Vec::new();
    let mut detail = String::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => certificates.push(cert),
            Ok(_) => {}
            Err(err) => detail = format!(" ({err})"),
        }
    }
    if certificates.is_empty() {
        return Err(OtlpError::CaEmpty {
            path: path.to_path_buf(),
            detail,
        });
    }
    Ok(certificates)
}

/// `NAME=VALUE` (as `--otlp-header` and `SEALWATCH_OTLP_HEADERS` take them).
pub fn parse_header(text: &str) -> Result<(String, String), OtlpError> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_string(), value.trim().to_string()))
        }
        _ => Err(OtlpError::Header(text.to_string())),
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;

    #[test]
    fn endpoints_get_the_logs_path_unless_they_have_one() {
        assert_eq!(logs_url("http://c:4318").unwrap(), "http://c:4318/v1/logs");
        assert_eq!(
            logs_url("https://c:4318/").unwrap(),
            "https://c:4318/v1/logs"
        );
        assert_eq!(
            logs_url("http://c/otlp/v1/logs").unwrap(),
            "http://c/otlp/v1/logs"
        );
        assert!(logs_url("c:4318").is_err());
        assert!(logs_url("http://").is_err());
        assert!(logs_url("ftp://c").is_err());
    }

    #[test]
    fn headers_are_name_equals_value() {
        assert_eq!(
            parse_header("Authorization=Bearer a=b").unwrap(),
            ("Authorization".into(), "Bearer a=b".into())
        );
        assert!(parse_header("=x").is_err());
        assert!(parse_header("x").is_err());
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let err = read_ca(&path).unwrap_err().to_string();
        assert!(err.contains("holds no PEM certificate"), "{err}");
        assert!(read_ca(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn requests_decode_with_the_official_definitions() {
        let mut sink = OtlpSink::new(OtlpOptions {
            endpoint: "http://127.0.0.1:1".into(),
            headers: Vec::new(),
            ca_file: None,
            compression: Compression::Gzip,
            timeout: Duration::from_secs(1),
            node: "n1".into(),
        })
        .unwrap();
        let lines: Vec<Line> = vec![Line::from("{\"kind\":\"x\"}"), Line::from("y")];
        sink.encode(&lines);
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&sink.gzipped[..])
            .read_to_end(&mut raw)
            .unwrap();
        let request = ExportLogsServiceRequest::decode(&raw[..]).unwrap();
        assert_eq!(request.resource_logs.len(), 1);
        let resource_logs = &request.resource_logs[0];
        assert_eq!(resource_logs.resource.as_ref(), Some(&sink.resource));
        assert_eq!(resource_logs.scope_logs.len(), 1);
        let scope_logs = &resource_logs.scope_logs[0];
        assert_eq!(scope_logs.scope.as_ref(), Some(&sink.scope));
        let records = &scope_logs.log_records;
        assert_eq!(records.len(), 2);
        assert_eq!(
            records[0].body,
            Some(record::string("{\"kind\":\"x\"}")),
            "records in line order"
        );
        // Nobody listens on port 1: a transient failure, to be retried.
        assert!(matches!(sink.deliver(&lines), Delivery::Retry { .. }));
    }
}
