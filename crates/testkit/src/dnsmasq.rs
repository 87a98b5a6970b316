//! A DNS server of the test's own: Debian's `dnsmasq` (package
//! `dnsmasq-base`) on a free port of 127.0.0.1, answering only the TXT
//! records it is given (no upstream, no hosts file), so domain verification
//! is tested against a real resolver path. dnsmasq reads TXT records only at
//! start: `publish` restarts it on the same port with the new set.

use std::{
    net::{SocketAddr, UdpSocket},
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
    /// Starts one answering `records` (`(name, value)` TXT records).
    pub fn start(records: &[(&str, &str)]) -> Dnsmasq {
        // A port free for UDP (dnsmasq takes TCP on it too).
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = Dnsmasq {
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            child: None,
        };
        server.publish(records);
        server
    }

    /// Answers exactly `records` from now on (a restart on the same port).
    pub fn publish(&mut self, records: &[(&str, &str)]) {
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
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq starts (apt-get install dnsmasq-base)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(self.address).is_err() {
            assert!(Instant::now() < deadline, "dnsmasq did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
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

fn binary() -> PathBuf {
    ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
        .unwrap_or_else(|| PathBuf::from("dnsmasq"))
}
