//! A DNS server of the test's own: Debian's `dnsmasq` (package
//! `dnsmasq-base`) on a free port of 127.0.0.1, answering only the TXT
//! records it is given (no upstream, no hosts file), so domain verification
//! is tested against a real resolver path. dnsmasq reads TXT records only at
//! start: `publish` restarts it on the same port with the new set.

use std::{
    net::{SocketAddr, TcpListener, UdpSocket},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A running dnsmasq; stopped (killed) when dropped.
pub struct Dnsmasq {
    pub address: SocketAddr,
    child: Option<Child>,
}

impl Dnsmasq {
    /// Starts one answering `records` (`(name, value)` TXT records), on a
    /// port free for both UDP and TCP (dnsmasq takes both); another port
    /// when a parallel test took that one first.
    pub fn start(records: &[(&str, &str)]) -> Dnsmasq {
        for _ in 0..20 {
            let mut server = Dnsmasq {
                address: SocketAddr::from(([127, 0, 0, 1], free_port())),
                child: None,
            };
            if server.launch(records) {
                return server;
            }
        }
        panic!("dnsmasq did not listen on any of 20 ports");
    }

    /// Answers exactly `records` from now on (a restart on the same port,
    /// which the server under test was told of).
    pub fn publish(&mut self, records: &[(&str, &str)]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.launch(records) {
            assert!(Instant::now() < deadline, "dnsmasq did not listen again");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// (Re)starts dnsmasq on this port; false when it exited instead of
    /// listening (the port is taken).
    fn launch(&mut self, records: &[(&str, &str)]) -> bool {
        self.stop();
        let mut command = Command::new(binary());
        command.args([
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--conf-file=/dev/null",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--local-ttl=0",
            "--user=root",
            "--pid-file=",
            // Authoritative for every name: one it does not hold is
            // NXDOMAIN (a real "no"), not a refusal.
            "--local=/#/",
        ]);
        command.arg(format!("--port={}", self.address.port()));
        for (name, value) in records {
            command.arg(format!("--txt-record={name},{value}"));
        }
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq starts (apt-get install dnsmasq-base)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(self.address).is_err() {
            if child.try_wait().ok().flatten().is_some() || Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
        true
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port of 127.0.0.1 free for both TCP and UDP as of now.
fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn binary() -> PathBuf {
    ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
        .unwrap_or_else(|| PathBuf::from("dnsmasq"))
}
