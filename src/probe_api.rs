//! The probe API on the admin listener: `POST /api/msrp/send` and `POST /api/msrp/connect`,
//! with the request and response JSON of the probe service this project started from.
//!
//! It makes outbound connections for whoever can reach the admin port, so it is off unless
//! `admin.probe_api = true`, can require a bearer token (`admin.token`), and can be limited
//! to a list of target hosts (`admin.allowed_hosts`). Bad input gets 400 with a JSON error
//! that names the field.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use msrp_proto::{ByteRange, MsrpUri};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::admin::Body;
use crate::client::{Connection, SendOptions};
use crate::commands::{self, ConnectArgs};
use crate::config::Settings;

/// Largest request body and largest `content` accepted.
const MAX_BODY: usize = 64 * 1024;
const MAX_CONTENT: usize = 10 * 1024;
const TIMEOUT_MS: std::ops::RangeInclusive<u64> = 100..=60_000;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendRequest {
    host: Option<String>,
    port: Option<u16>,
    /// The relay's name as AUTH and TLS expect it, when `host` is an address or another name.
    relay_host: Option<String>,
    from_path: Option<String>,
    to_path: Option<String>,
    content: Option<String>,
    content_type: Option<String>,
    message_id: Option<String>,
    timeout: Option<u64>,
    tls: Option<bool>,
    username: Option<String>,
    password: Option<String>,
}

fn json_response(status: StatusCode, v: Value) -> Response<Body> {
    let mut r = Response::new(http_body_util::Full::new(Bytes::from(v.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

/// 400 naming the field at fault.
fn bad(field: &str, why: impl std::fmt::Display) -> Response<Body> {
    json_response(
        StatusCode::BAD_REQUEST,
        json!({ "success": false, "field": field, "error": format!("{field}: {why}") }),
    )
}

/// Route `/api/msrp/*`: `None` when the path is not the API's.
pub async fn route(req: Request<Incoming>, settings: &Settings) -> Option<Response<Body>> {
    let path = req.uri().path().to_owned();
    if path != "/api/msrp/send" && path != "/api/msrp/connect" {
        return None;
    }
    let admin = &settings.admin;
    if !admin.probe_api {
        return Some(json_response(
            StatusCode::NOT_FOUND,
            json!({ "success": false, "error": "the probe API is off (admin.probe_api = false)" }),
        ));
    }
    if req.method() != hyper::Method::POST {
        return Some(json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({ "success": false, "error": "use POST" }),
        ));
    }
    if let Some(token) = &admin.token {
        let given = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let ok = given.is_some_and(|g| msrp_proto::digest::digests_equal(g, token));
        if !ok {
            return Some(json_response(
                StatusCode::UNAUTHORIZED,
                json!({ "success": false, "error": "a bearer token is required (admin.token)" }),
            ));
        }
    }
    let body = match http_body_util::Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Some(bad(
                "body",
                format!("unreadable or larger than {MAX_BODY} bytes"),
            ))
        }
    };
    let request: SendRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return Some(bad("body", format!("not the expected JSON: {e}"))),
    };
    Some(handle(&path, request, settings).await)
}

async fn handle(path: &str, r: SendRequest, settings: &Settings) -> Response<Body> {
    let Some(host) = r.host.clone().filter(|h| !h.is_empty()) else {
        return bad("host", "is required");
    };
    let port = r.port.unwrap_or(commands::DEFAULT_PORT);
    if port == 0 {
        return bad("port", "must be 1 to 65535");
    }
    let timeout_ms = r.timeout.unwrap_or(15_000);
    if !TIMEOUT_MS.contains(&timeout_ms) {
        return bad(
            "timeout",
            format!("must be {} to {} ms", TIMEOUT_MS.start(), TIMEOUT_MS.end()),
        );
    }
    let allowed = &settings.admin.allowed_hosts;
    if !allowed.is_empty() && !allowed.iter().any(|a| a.eq_ignore_ascii_case(&host)) {
        return json_response(
            StatusCode::FORBIDDEN,
            json!({ "success": false, "field": "host", "error": format!("host {host} is not in admin.allowed_hosts") }),
        );
    }
    let tls = r.tls.unwrap_or(false);
    let scheme = if tls { "msrps" } else { "msrp" };
    let name = r
        .relay_host
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| host.clone());
    let name_in_uri = if name.contains(':') {
        format!("[{name}]")
    } else {
        name.clone()
    };
    let host_in_addr = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.clone()
    };
    let args = ConnectArgs {
        relay: format!("{scheme}://{name_in_uri}:{port};tcp"),
        connect: Some(format!("{host_in_addr}:{port}")),
        ca: settings.tls.ca.clone(),
        insecure: false,
        timeout: Duration::from_millis(timeout_ms),
        json: true,
    };
    let relay = match commands::Relay::from_args(&args) {
        Ok(r) => r,
        Err(e) => {
            return bad(
                if r.relay_host.is_some() {
                    "relayHost"
                } else {
                    "host"
                },
                e,
            )
        }
    };
    let credentials = match (&r.username, &r.password) {
        (Some(u), Some(p)) => Some((u.clone(), p.clone())),
        (None, None) => None,
        (Some(_), None) => return bad("password", "is required with username"),
        (None, Some(_)) => return bad("username", "is required with password"),
    };
    let base = json!({ "host": host, "port": port });
    if path == "/api/msrp/connect" {
        return connect(relay, credentials, base).await;
    }
    // SEND: validate everything before touching the network.
    let Some(to_text) = r.to_path.as_deref().filter(|t| !t.trim().is_empty()) else {
        return bad("toPath", "is required");
    };
    let to_path: Vec<MsrpUri> = match to_text.split_whitespace().map(str::parse).collect() {
        Ok(v) => v,
        Err(e) => return bad("toPath", format!("not an MSRP URI list: {e}")),
    };
    let from: MsrpUri = match r.from_path.as_deref() {
        Some(f) => match f.trim().parse() {
            Ok(u) => u,
            Err(e) => return bad("fromPath", format!("not an MSRP URI: {e}")),
        },
        None => match commands::random_own_uri(if tls {
            msrp_proto::Scheme::Msrps
        } else {
            msrp_proto::Scheme::Msrp
        }) {
            Ok(u) => u,
            Err(e) => return bad("fromPath", e),
        },
    };
    let content = r.content.unwrap_or_default();
    if content.len() > MAX_CONTENT {
        return bad("content", format!("longer than {MAX_CONTENT} bytes"));
    }
    let content_type = r.content_type.unwrap_or_else(|| "text/plain".to_owned());
    if content_type.is_empty() || !content_type.contains('/') {
        return bad("contentType", "must be a media type like text/plain");
    }
    let message_id = r.message_id.unwrap_or_else(|| commands::random_token(16));
    if msrp_proto::TransactionId::new(message_id.as_bytes()).is_none() {
        return bad(
            "messageId",
            "must be 4 to 32 characters of letters, digits and . - + % =",
        );
    }
    send(
        relay,
        credentials,
        base,
        SendPlan {
            to_path,
            from,
            content,
            content_type,
            message_id,
        },
    )
    .await
}

struct SendPlan {
    to_path: Vec<MsrpUri>,
    from: MsrpUri,
    content: String,
    content_type: String,
    message_id: String,
}

fn failure(mut base: Value, status: StatusCode, error: impl std::fmt::Display) -> Response<Body> {
    base["success"] = json!(false);
    base["error"] = json!(error.to_string());
    json_response(status, base)
}

async fn connect_and_auth(
    relay: &commands::Relay,
    credentials: &Option<(String, String)>,
    from: &MsrpUri,
) -> Result<(Connection, Vec<MsrpUri>, Value), String> {
    let (mut conn, connected) = relay.connect().await.map_err(|e| e.to_string())?;
    let mut info = json!({ "connectTime": commands::millis(connected.tcp_connect) });
    let mut use_path = Vec::new();
    if let Some((user, password)) = credentials {
        let started = Instant::now();
        let grant = conn
            .auth(&relay.uri, from, user, password, None, relay.timeout)
            .await
            .map_err(|e| format!("AUTH: {e}"))?;
        info["authTime"] = json!(commands::millis(started.elapsed()));
        info["usePath"] = json!(grant
            .use_path
            .iter()
            .map(|u| u.as_str())
            .collect::<Vec<_>>()
            .join(" "));
        use_path = grant.use_path;
    }
    Ok((conn, use_path, info))
}

async fn connect(
    relay: commands::Relay,
    credentials: Option<(String, String)>,
    mut base: Value,
) -> Response<Body> {
    let me = match commands::random_own_uri(relay.uri.scheme()) {
        Ok(u) => u,
        Err(e) => return failure(base, StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let started = Instant::now();
    match connect_and_auth(&relay, &credentials, &me).await {
        Ok((_, _, info)) => {
            base["success"] = json!(true);
            base["rtt"] = json!(started.elapsed().as_millis() as u64);
            if let (Some(b), Some(i)) = (base.as_object_mut(), info.as_object()) {
                b.extend(i.clone());
            }
            json_response(StatusCode::OK, base)
        }
        Err(e) => failure(base, StatusCode::OK, e),
    }
}

async fn send(
    relay: commands::Relay,
    credentials: Option<(String, String)>,
    mut base: Value,
    plan: SendPlan,
) -> Response<Body> {
    base["messageId"] = json!(plan.message_id);
    let n = plan.content.len() as u64;
    let range = ByteRange {
        start: 1,
        end: Some(n),
        total: Some(n),
    };
    base["byteRange"] = json!(range.to_string());
    let (mut conn, use_path, _) = match connect_and_auth(&relay, &credentials, &plan.from).await {
        Ok(c) => c,
        Err(e) => return failure(base, StatusCode::OK, e),
    };
    let to: Vec<MsrpUri> = use_path.into_iter().chain(plan.to_path).collect();
    let opts = SendOptions {
        message_id: &plan.message_id,
        content_type: &plan.content_type,
        byte_range: Some(range),
        ..SendOptions::default()
    };
    let started = Instant::now();
    let tid = match conn
        .send(
            &to,
            std::slice::from_ref(&plan.from),
            &opts,
            plan.content.as_bytes(),
        )
        .await
    {
        Ok(t) => t,
        Err(e) => return failure(base, StatusCode::OK, e),
    };
    base["transactionId"] = json!(tid.as_str());
    match conn.response_to(&tid, relay.timeout).await {
        Ok(m) => {
            let code = m.head.response_code().unwrap_or(0);
            let text = match m.head.start_line() {
                msrp_proto::StartLine::Response { comment, .. } => {
                    String::from_utf8_lossy(comment).into_owned()
                }
                _ => String::new(),
            };
            base["success"] = json!(code == 200);
            base["statusCode"] = json!(code);
            base["statusText"] = json!(text);
            base["rtt"] = json!(started.elapsed().as_millis() as u64);
            if code != 200 {
                base["error"] = json!(format!("the peer answered {code} {text}"));
            }
            json_response(StatusCode::OK, base)
        }
        Err(e) => failure(base, StatusCode::OK, e),
    }
}
