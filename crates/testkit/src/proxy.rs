//! A TCP proxy on loopback that a test can cut, blackhole and restore, to
//! show how the service behaves when a dependency (Postgres, RabbitMQ) goes
//! away: at once (`cut`, as a dead host refusing), or silently
//! (`blackhole`, as a partition that drops packets: connections stay open
//! and nothing comes back).

use std::net::SocketAddr;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        TcpListener, TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
    sync::watch,
};

/// What the proxy does with the bytes it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    Open,
    /// Every connection closed, new ones refused.
    Cut,
    /// Connections kept and new ones accepted, but nothing forwarded either
    /// way until the path opens again; then what waited goes through.
    Silent,
}

pub struct TcpProxy {
    address: SocketAddr,
    path: watch::Sender<Path>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// Forwards connections on a free loopback port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let address = listener.local_addr().expect("local address");
        let (path, _) = watch::channel(Path::Open);
        let state = path.clone();
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let mut path = state.subscribe();
                if *path.borrow() == Path::Cut {
                    // Cut: the connection is closed at once, as by a dead host.
                    drop(inbound);
                    continue;
                }
                tokio::spawn(async move {
                    // A silent path connects nowhere until it opens.
                    if !open_or_cut(&mut path).await {
                        return;
                    }
                    let Ok(outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (from_client, to_client) = inbound.into_split();
                    let (from_upstream, to_upstream) = outbound.into_split();
                    tokio::select! {
                        _ = pump(from_client, to_upstream, path.clone()) => {}
                        _ = pump(from_upstream, to_client, path) => {}
                    }
                });
            }
        });
        TcpProxy {
            address,
            path,
            task,
        }
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Closes every connection and refuses new ones until `restore`.
    pub fn cut(&self) {
        self.path.send_replace(Path::Cut);
    }

    /// Forwards nothing, either way, until `restore`; every connection stays
    /// open and new ones are accepted: a partition, not a refusal.
    pub fn blackhole(&self) {
        self.path.send_replace(Path::Silent);
    }

    pub fn restore(&self) {
        self.path.send_replace(Path::Open);
    }
}

/// Waits while the path is silent: true once it is open, false if cut.
async fn open_or_cut(path: &mut watch::Receiver<Path>) -> bool {
    match path.wait_for(|path| *path != Path::Silent).await {
        Ok(path) => *path == Path::Open,
        Err(_) => false,
    }
}

/// Copies `from` to `to` while the path is open, holding what it read while
/// the path is silent; returns when either side closes or the path is cut.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut path: watch::Receiver<Path>) {
    let mut buffer = vec![0; 16 * 1024];
    loop {
        if !open_or_cut(&mut path).await {
            return;
        }
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            // Silent or cut meanwhile: decided again at the top.
            _ = path.changed() => continue,
        };
        let n = match read {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if !open_or_cut(&mut path).await || to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
