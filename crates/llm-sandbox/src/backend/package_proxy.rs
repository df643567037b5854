//! The package proxy: how an installer in a sandbox without a network reaches its package
//! index, and nothing else.
//!
//! The backend hands the proxy a listening socket that lives in the sandbox's own network
//! namespace (on its loopback), and the installer gets `HTTPS_PROXY` pointing there. The proxy
//! runs in the library, outside the sandbox, and serves only `CONNECT host:443` for the hosts
//! it was given (the language's index, e.g. `pypi.org` and `files.pythonhosted.org`): TLS
//! stays end to end between the installer and the index, the host's loopback and interfaces
//! stay out of reach, and so does every other address. It lives only while the install runs.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// The longest request head the proxy reads.
const MAX_HEAD: usize = 8 << 10;
/// How long a client may take to send its request head, and the proxy to reach the index.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections served at once.
const MAX_CONNECTIONS: usize = 32;

/// A proxy allowing HTTPS tunnels to `hosts` only.
#[derive(Debug, Clone)]
pub struct PackageProxy {
    hosts: Arc<Vec<String>>,
}

impl PackageProxy {
    /// A proxy for `hosts` (names, compared without case).
    pub fn new(hosts: &[String]) -> Self {
        PackageProxy {
            hosts: Arc::new(hosts.iter().map(|h| h.to_ascii_lowercase()).collect()),
        }
    }

    /// The environment that sends an installer's HTTP(S) traffic to a proxy on the sandbox's
    /// 127.0.0.1:`port`.
    pub fn environment(port: u16) -> Vec<(String, String)> {
        let url = format!("http://127.0.0.1:{port}");
        ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"]
            .into_iter()
            .map(|name| (name.to_string(), url.clone()))
            .collect()
    }

    /// Runs `run` (the installer) while serving `listener`; returns what `run` returns. The
    /// proxy and its tunnels end with it.
    pub async fn alongside<T>(
        self,
        listener: std::net::TcpListener,
        run: impl Future<Output = T>,
    ) -> T {
        let mut run = pin!(run);
        tokio::select! {
            output = &mut run => output,
            error = self.serve(listener) => {
                tracing::warn!("the package proxy stopped: {error}");
                run.await
            }
        }
    }

    /// Serves connections on `listener` until the returned future is dropped (it completes
    /// only when accepting fails); dropping it closes every tunnel.
    pub async fn serve(self, listener: std::net::TcpListener) -> io::Error {
        let listener = match listener
            .set_nonblocking(true)
            .and_then(|()| TcpListener::from_std(listener))
        {
            Ok(listener) => listener,
            Err(e) => return e,
        };
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut connections = JoinSet::new();
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => return e,
            };
            while connections.try_join_next().is_some() {}
            let Ok(slot) = slots.clone().acquire_owned().await else {
                continue;
            };
            let proxy = self.clone();
            connections.spawn(async move {
                let _slot = slot;
                if let Err(e) = proxy.tunnel(stream).await {
                    tracing::debug!("package proxy: {e}");
                }
            });
        }
    }

    async fn tunnel(&self, mut client: TcpStream) -> io::Result<()> {
        let head = tokio::time::timeout(HANDSHAKE_TIMEOUT, read_head(&mut client))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no request head"))??;
        let (host, port) = match target(&head) {
            Ok(target) => target,
            Err(reason) => return refuse(&mut client, "400 Bad Request", &reason).await,
        };
        if port != 443 || !self.hosts.contains(&host) {
            tracing::info!("package proxy: refused {host}:{port}");
            let reason = format!(
                "{host}:{port} is not a package index this install may reach (allowed: {} on port 443)",
                self.hosts.join(", ")
            );
            return refuse(&mut client, "403 Forbidden", &reason).await;
        }
        let connected =
            tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect((host.as_str(), port)))
                .await;
        let mut upstream = match connected {
            Ok(Ok(upstream)) => upstream,
            Ok(Err(e)) => {
                let reason = format!("cannot reach {host}:{port}: {e}");
                return refuse(&mut client, "502 Bad Gateway", &reason).await;
            }
            Err(_) => {
                let reason = format!("{host}:{port} did not answer in time");
                return refuse(&mut client, "504 Gateway Timeout", &reason).await;
            }
        };
        tracing::debug!("package proxy: tunnel to {host}:{port}");
        client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await?;
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
        Ok(())
    }
}

/// Reads up to the end of the request head (`\r\n\r\n`).
async fn read_head(client: &mut TcpStream) -> io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD || client.read(&mut byte).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "no complete request head",
            ));
        }
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// The `host` (lower case) and `port` of a `CONNECT host:port HTTP/1.x` request.
fn target(head: &str) -> Result<(String, u16), String> {
    let line = head.lines().next().unwrap_or_default();
    let mut words = line.split_whitespace();
    let (Some(method), Some(authority), Some(version)) = (words.next(), words.next(), words.next())
    else {
        return Err("a malformed request line".into());
    };
    if method != "CONNECT" || !version.starts_with("HTTP/1.") {
        return Err(format!(
            "only HTTPS tunnels (CONNECT) are served, not `{method}`"
        ));
    }
    let (host, port) = authority
        .rsplit_once(':')
        .ok_or_else(|| format!("`{authority}` names no port"))?;
    let port = port
        .parse()
        .map_err(|_| format!("`{authority}` has a bad port"))?;
    let valid = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if !valid {
        return Err(format!("`{host}` is not a host name"));
    }
    Ok((host.to_ascii_lowercase(), port))
}

async fn refuse(client: &mut TcpStream, status: &str, reason: &str) -> io::Result<()> {
    let body = format!("llm-sandbox: {reason}\n");
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    client.write_all(response.as_bytes()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_connect_to_a_host_and_port_is_a_target() {
        assert_eq!(
            target("CONNECT PyPI.org:443 HTTP/1.1\r\nHost: pypi.org\r\n\r\n"),
            Ok(("pypi.org".into(), 443))
        );
        assert!(target("GET http://pypi.org/ HTTP/1.1\r\n\r\n").is_err());
        assert!(target("CONNECT pypi.org HTTP/1.1\r\n\r\n").is_err());
        assert!(target("CONNECT [::1]:443 HTTP/1.1\r\n\r\n").is_err());
        assert!(target("CONNECT a@b:443 HTTP/1.1\r\n\r\n").is_err());
    }

    #[tokio::test]
    async fn hosts_off_the_list_are_refused_without_a_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // A listener standing for a host service the proxy must never reach.
        let host_service = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        host_service.set_nonblocking(true).unwrap();
        let service_port = host_service.local_addr().unwrap().port();
        let proxy = PackageProxy::new(&["pypi.org".to_string()]);
        let served = tokio::spawn(proxy.serve(listener));
        for target in [
            format!("127.0.0.1:{service_port}"),
            "localhost:443".to_string(),
            "evil.example:443".to_string(),
            "pypi.org:80".to_string(),
        ] {
            let mut client = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            let request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
            client.write_all(request.as_bytes()).await.unwrap();
            let mut answer = String::new();
            client.read_to_string(&mut answer).await.unwrap();
            assert!(
                answer.starts_with("HTTP/1.1 403") || answer.starts_with("HTTP/1.1 400"),
                "{target}: {answer}"
            );
        }
        assert!(
            host_service.accept().is_err(),
            "the host service was reached"
        );
        served.abort();
    }
}
