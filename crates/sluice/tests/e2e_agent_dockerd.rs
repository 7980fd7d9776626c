//! End to end: `sluice agent` across a restart of dockerd itself. In its
//! own test binary because it stops the daemon every other agent test
//! uses (cargo runs test binaries one at a time).
//!
//! The daemon is stopped with SIGTERM (it stops its containers) and
//! started again as the test command starts it (`dockerd`, in the
//! background). Lines a container wrote before the daemon stopped are all
//! collected exactly once (compared with `docker logs`), and a container
//! started after the restart is followed too: the agent found the daemon
//! again on its own.

mod support;

use std::process::{Command, Stdio};

use support::docker::*;
use support::reads::*;
use support::*;

fn dockerd_pid() -> Option<String> {
    let out = Command::new("pidof").arg("dockerd").output().ok()?;
    let pid = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (!pid.is_empty()).then_some(pid)
}

fn docker_answers() -> bool {
    Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn the_agent_rides_out_a_dockerd_restart() {
    require("dockerd");
    let data = TempDir::new("agent-dockerd");
    let mut containers = Containers::new("dockerd");
    let agent = start_agent(&data.0, &containers);
    let id = containers.run(
        "before",
        &[],
        "i=0; while true; do i=$((i+1)); echo \"b $i\"; usleep 500; done",
    );
    let name = containers.name("before");
    wait_entries(&agent, &name, 300, 30);

    let pid = dockerd_pid().expect("dockerd runs (the test command starts it)");
    let status = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(status.is_ok_and(|s| s.success()), "SIGTERM dockerd");
    let gone = eventually(30, || dockerd_pid().is_none().then_some(()));
    assert!(gone.is_some(), "dockerd stopped");
    let log = std::fs::File::create(std::env::temp_dir().join("sluice-e2e-dockerd-restart.log"))
        .expect("dockerd log file");
    // `setsid --fork` returns once dockerd runs in its own session, which
    // outlives this test as the test command's dockerd does.
    let started = Command::new("setsid")
        .args(["--fork", "dockerd"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .status()
        .expect("start dockerd again");
    assert!(started.success(), "setsid --fork dockerd");
    assert!(
        eventually(60, || docker_answers().then_some(())).is_some(),
        "dockerd came back"
    );

    // Everything the daemon stored before it stopped, exactly once.
    let stored = docker(&["logs", &id]);
    let want: Vec<u64> = stored
        .lines()
        .filter_map(|l| l.strip_prefix("b ").and_then(|n| n.trim().parse().ok()))
        .collect();
    assert!(want.len() >= 300, "the container wrote before the restart");
    assert_eq!(want, (1..=want.len() as u64).collect::<Vec<_>>());
    let entries = settled_entries(&agent, &name, want.len(), 30);
    assert_eq!(numbers(&entries, "b "), want, "each stored line once");

    // A container started after the restart is followed.
    let after = containers.run("after", &[], "echo after the restart");
    docker(&["wait", &after]);
    let later = wait_entries(&agent, &containers.name("after"), 1, 30);
    assert_eq!(
        later.iter().map(payload).collect::<Vec<_>>(),
        ["after the restart"]
    );
}
