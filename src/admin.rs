//! The admin HTTP listener (hyper, HTTP/1.1): `GET /healthz`, `GET /readyz`, `GET /metrics`.
//!
//! Liveness says the process answers; readiness says the MSRP listeners are bound and the
//! configuration is loaded, and goes back to 503 when a shutdown starts so a load balancer
//! stops sending new clients.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::relay::Shared;

pub type Body = Full<Bytes>;

/// A bound admin listener.
pub struct Admin {
    listener: TcpListener,
    pub local_addr: SocketAddr,
}

impl Admin {
    pub async fn bind(address: SocketAddr) -> anyhow::Result<Admin> {
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address} (admin.address)"))?;
        let local_addr = listener.local_addr()?;
        Ok(Admin {
            listener,
            local_addr,
        })
    }

    /// Serve until the relay has shut down.
    pub async fn run(self, shared: Arc<Shared>) {
        tracing::info!(address = %self.local_addr, "admin listener (healthz, readyz, metrics)");
        loop {
            let (tcp, _) = tokio::select! {
                                _ = shared.shutdown.cancelled() => break,
                r = self.listener.accept() => match r {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "admin accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let shared = shared.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let shared = shared.clone();
                    async move { Ok::<_, Infallible>(route(req, &shared).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service);
                let _ = tokio::time::timeout(std::time::Duration::from_secs(60), conn).await;
            });
        }
    }
}

pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

async fn route(req: Request<Incoming>, shared: &Arc<Shared>) -> Response<Body> {
    if req.uri().path().starts_with("/api/") {
        let settings = shared.settings();
        if let Some(r) = crate::probe_api::route(req, &settings).await {
            return r;
        }
        return text(StatusCode::NOT_FOUND, "not found\n");
    }
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/readyz") => {
            if shared.is_ready() {
                text(StatusCode::OK, "ready\n")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
            }
        }
        (&Method::GET, "/metrics") => {
            shared.refresh_gauges();
            let mut r = text(StatusCode::OK, shared.metrics.encode());
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            r
        }
        (_, "/healthz" | "/readyz" | "/metrics") => {
            text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n")
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}
