//! The reference server for `make bench` (P1): a bare hyper "hello"
//! server, on the same runtime as gatehouse (tokio multi-thread, one worker
//! per core) and the same connection code axum uses (hyper-util's
//! connection builder, HTTP/1.1 keep-alive), but with no router, no layers,
//! no state: one `tower::service_fn` that answers 200 "hello". gatehouse's
//! requests/s over this one's, measured the same way in the same run, is
//! the share of the machine's HTTP capacity that gatehouse keeps.
//!
//! `hyper` is not a direct dependency of gatehouse, so it is reached
//! through `hyper-util` (a dev-dependency; its server features are the
//! ones axum enables) and `axum::http` / `axum::body` for the types.
//!
//! `bench_hello [ADDR=127.0.0.1:0]`: prints `listening on ADDR`.

use axum::body::Body;
use axum::http::{Request, Response, header};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::convert::Infallible;
use std::io::Write;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = tower::service_fn(|_req: Request<_>| async {
                Ok::<_, Infallible>(
                    Response::builder()
                        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
                        .body(Body::from("hello\n"))
                        .expect("a static response"),
                )
            });
            let _ = Builder::new(TokioExecutor::new())
                .http1_only()
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                .await;
        });
    }
}
