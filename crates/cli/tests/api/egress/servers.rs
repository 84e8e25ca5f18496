//! Destinations for the egress tests, on the host's loopback: a plain HTTP
//! server and a TLS one with a self-signed certificate for `allowed.test`.
//! Both answer every request with a body naming the request target and
//! Host they saw, so tests can tell what really arrived.

use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

pub struct Destinations {
    pub http: SocketAddr,
    pub https: SocketAddr,
    /// PEM of the TLS server's certificate (its own CA).
    pub ca_pem: String,
}

/// Reads one request head and answers `<tag> <target> host=<Host>`.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, tag: &str) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 65536 {
            return;
        }
    }
    let text = String::from_utf8_lossy(&head);
    let target = text.split_whitespace().nth(1).unwrap_or("").to_string();
    let host = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("Host: ")
                .or_else(|| l.strip_prefix("host: "))
        })
        .unwrap_or("")
        .to_string();
    let body = format!("{tag} {target} host={host}\n");
    let resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(resp.as_bytes()).await;
    let _ = s.shutdown().await;
}

pub async fn start() -> Destinations {
    let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = plain.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = plain.accept().await {
            tokio::spawn(answer(s, "hello-plain"));
        }
    });

    let cert = rcgen::generate_simple_self_signed(vec!["allowed.test".to_string()]).unwrap();
    let ca_pem = cert.cert.pem();
    let key = rustls_key(cert.key_pair.serialize_der());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let tls = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let https = tls.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = tls.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(s) = acceptor.accept(s).await {
                    answer(s, "hello-https").await;
                }
            });
        }
    });
    Destinations {
        http,
        https,
        ca_pem,
    }
}

fn rustls_key(der: Vec<u8>) -> tokio_rustls::rustls::pki_types::PrivateKeyDer<'static> {
    tokio_rustls::rustls::pki_types::PrivateKeyDer::Pkcs8(der.into())
}

/// The host's own non-loopback addresses (`hostname -I`), for probes that
/// must not reach the host from inside a sandbox.
pub fn host_addresses() -> Vec<String> {
    std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .filter(|a| !a.contains(':'))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}
