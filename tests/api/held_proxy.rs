//! A TCP proxy a test can *hold*: while held, every byte waits in the proxy, in both
//! directions, and no connection is closed; released, everything flows on in order. To
//! PostgreSQL's clients this is a stall (a database that stops answering for a while),
//! not an outage: their queries are answered late, never refused.

use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct HeldProxy {
    pub port: u16,
    /// `true` while bytes flow.
    flowing: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl HeldProxy {
    /// Forward `127.0.0.1:<port>` to `target`.
    pub async fn start(target: SocketAddr) -> HeldProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let flowing = watch::Sender::new(true);
        let accept = tokio::spawn({
            let flowing = flowing.clone();
            async move {
                while let Ok((inbound, _)) = listener.accept().await {
                    let flowing = flowing.subscribe();
                    tokio::spawn(async move {
                        let Ok(outbound) = TcpStream::connect(target).await else {
                            return;
                        };
                        let (in_read, in_write) = inbound.into_split();
                        let (out_read, out_write) = outbound.into_split();
                        tokio::join!(
                            pump(in_read, out_write, flowing.clone()),
                            pump(out_read, in_write, flowing),
                        );
                    });
                }
            }
        });
        HeldProxy {
            port,
            flowing,
            accept,
        }
    }

    /// Stop forwarding (connections stay open; bytes wait here).
    pub fn hold(&self) {
        self.flowing.send_replace(false);
    }

    /// Forward again, the held bytes first.
    pub fn release(&self) {
        self.flowing.send_replace(true);
    }
}

impl Drop for HeldProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Copy `from` to `to`, each chunk only while the proxy is not held.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut flowing: watch::Receiver<bool>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if flowing.wait_for(|f| *f).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
