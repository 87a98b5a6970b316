//! A RabbitMQ cluster of the test's own, from this machine's RabbitMQ
//! installation: nodes with names of their own (`wct<id>n<i>@localhost`),
//! each on free AMQP and distribution ports, its database, logs and
//! configuration in a temporary folder, no plugins; the second and later
//! nodes join the first with `rabbitmqctl join_cluster`. A node can be
//! killed as a machine dies (SIGKILL) and started again, when it rejoins.
//! As root the nodes run as `rabbitmq`, with its Erlang cookie.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use crate::system::{as_account, free_port, is_root};

const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
const CTL: &str = "/usr/lib/rabbitmq/bin/rabbitmqctl";

/// A running cluster; every node killed and its files removed when dropped.
pub struct RabbitmqCluster {
    nodes: Vec<Node>,
    dir: PathBuf,
}

struct Node {
    name: String,
    port: u16,
    dist_port: u16,
    dir: PathBuf,
}

impl RabbitmqCluster {
    /// Starts `size` nodes and joins them; returns once all run as one cluster.
    pub fn start(size: usize) -> RabbitmqCluster {
        let id = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let dir = std::env::temp_dir().join(format!("wowchat-rabbitmq-{id}"));
        let nodes = (1..=size)
            .map(|n| Node {
                name: format!("wct{id}n{n}@localhost"),
                port: free_port(),
                dist_port: free_port(),
                dir: dir.join(format!("node{n}")),
            })
            .collect();
        let cluster = RabbitmqCluster { nodes, dir };
        for node in &cluster.nodes {
            node.prepare();
        }
        if is_root() {
            let _ = Command::new("chown")
                .args(["-R", "rabbitmq"])
                .arg(&cluster.dir)
                .status();
        }
        for index in 0..size {
            cluster.launch(index);
        }
        for index in 0..size {
            cluster.await_startup(index);
        }
        let first = cluster.nodes[0].name.clone();
        for index in 1..size {
            for step in [
                vec!["stop_app"],
                vec!["join_cluster", first.as_str()],
                vec!["start_app"],
            ] {
                cluster.ctl(index, &step);
            }
        }
        cluster
    }

    /// The AMQP URL of every node, in order, separated by commas (as
    /// `WOWCHAT_AMQP_URL` takes them).
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(|node| format!("amqp://guest:guest@127.0.0.1:{}/%2f", node.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The index of the node leading the quorum queue `queue`, as a
    /// running node (`asked`) sees it.
    pub fn leader_of(&self, queue: &str, asked: usize) -> usize {
        let listing = self.ctl(
            asked,
            &["list_queues", "-q", "--no-table-headers", "name", "leader"],
        );
        let listing = String::from_utf8_lossy(&listing.stdout);
        let leader = listing
            .lines()
            .find_map(|line| {
                let (name, leader) = line.split_once(char::is_whitespace)?;
                (name == queue).then(|| leader.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("no queue {queue} in {listing}"));
        self.nodes
            .iter()
            .position(|node| node.name == leader)
            .unwrap_or_else(|| panic!("{leader} is no node of this cluster"))
    }

    /// Kills node `index` as a machine dies: SIGKILL, nothing flushed.
    pub fn kill(&self, index: usize) {
        let pid =
            std::fs::read_to_string(self.nodes[index].dir.join("pid")).expect("the node runs");
        let status = Command::new("kill")
            .args(["-KILL", pid.trim()])
            .status()
            .unwrap();
        assert!(status.success(), "kill node {index}");
        let _ = std::fs::remove_file(self.nodes[index].dir.join("pid"));
    }

    /// Starts node `index` again on its own files; returns once it runs
    /// (it rejoins the cluster by itself).
    pub fn restart(&self, index: usize) {
        self.launch(index);
        self.await_startup(index);
    }

    /// Every node's log, for a failing test's message.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|node| {
                let log = std::fs::read_dir(node.dir.join("log"))
                    .into_iter()
                    .flatten()
                    .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path()).ok())
                    .collect::<String>();
                format!("--- {}\n{log}", node.name)
            })
            .collect()
    }

    fn launch(&self, index: usize) {
        let node = &self.nodes[index];
        let status = as_rabbitmq(Path::new(SERVER))
            .env("RABBITMQ_NODENAME", &node.name)
            .env("RABBITMQ_DIST_PORT", node.dist_port.to_string())
            .env("RABBITMQ_CONFIG_FILE", node.dir.join("rabbitmq.conf"))
            .env(
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                node.dir.join("enabled_plugins"),
            )
            .env("RABBITMQ_MNESIA_BASE", node.dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", node.dir.join("log"))
            .env("RABBITMQ_PID_FILE", node.dir.join("pid"))
            // Marks the node's command line, for the drop to find it by.
            .env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                format!("-wowchat_test_cluster {}", self.dir.display()),
            )
            .arg("-detached")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("rabbitmq-server runs (apt-get install rabbitmq-server)");
        assert!(status.success(), "starting {}", node.name);
    }

    /// Waits for node `index`'s pid file, then for it to finish booting.
    fn await_startup(&self, index: usize) {
        let pid_file = self.nodes[index].dir.join("pid");
        let pid_file = pid_file.to_str().unwrap().to_owned();
        self.ctl(index, &["wait", &pid_file, "--timeout", "60"]);
    }

    /// `rabbitmqctl -n <node index> args`, which must succeed.
    fn ctl(&self, index: usize, args: &[&str]) -> Output {
        let output = as_rabbitmq(Path::new(CTL))
            .args(["-n", &self.nodes[index].name])
            .args(args)
            .output()
            .expect("rabbitmqctl runs");
        assert!(
            output.status.success(),
            "rabbitmqctl {args:?} on node {index}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }
}

impl Node {
    fn prepare(&self) {
        std::fs::create_dir_all(&self.dir).unwrap();
        std::fs::write(
            self.dir.join("rabbitmq.conf"),
            format!(
                "listeners.tcp.1 = 127.0.0.1:{}\nloopback_users = none\n",
                self.port
            ),
        )
        .unwrap();
        std::fs::write(self.dir.join("enabled_plugins"), "[].\n").unwrap();
    }
}

impl Drop for RabbitmqCluster {
    fn drop(&mut self) {
        // Every node, even one still booting when a test failed.
        let _ = Command::new("pkill")
            .args(["-KILL", "-f"])
            .arg(format!("wowchat_test_cluster {}", self.dir.display()))
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `program` as `rabbitmq`, with its home, so its Erlang cookie.
fn as_rabbitmq(program: &Path) -> Command {
    as_account("rabbitmq", "/var/lib/rabbitmq", program)
}
