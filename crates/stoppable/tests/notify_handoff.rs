//! systemd's readiness protocol and the handoff's start, against real
//! sockets and processes. One test function: it sets the environment,
//! which tests running in parallel threads must not race on.
#![cfg(unix)]

use std::os::fd::AsFd;
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

fn received(socket: &UnixDatagram) -> String {
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0; 256];
    let n = socket.recv(&mut buf).expect("a notification");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Set in the new process the test starts: this binary again, which then
/// plays the new process instead of running the test.
const CHILD: &str = "NOTIFY_HANDOFF_CHILD";

/// The new process: checks what it was passed, says it is ready.
#[allow(unsafe_code)]
fn be_the_new_process() -> ! {
    // SAFETY: first thing this process does with descriptors: the passed
    // one is still its own.
    let passed = unsafe { stoppable::activation::take() }.expect("the passed sockets");
    let found: Vec<String> = passed
        .into_iter()
        .map(|socket| socket.into_tcp().unwrap().local_addr().unwrap().to_string())
        .collect();
    let expected = std::env::var("EXPECTED_ADDRS").expect("the addresses to find");
    assert_eq!(found.join(","), expected, "each in its place, in order");
    assert!(
        std::env::var_os("LISTEN_FDS").is_none(),
        "taken: not left for children"
    );
    assert!(stoppable::notify::ready().unwrap());
    std::process::exit(0);
}

#[test]
fn notifications_reach_the_manager_and_the_previous_process() {
    if std::env::var_os(CHILD).is_some() {
        be_the_new_process();
    }
    let dir = std::env::temp_dir().join(format!("stoppable-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let manager_path = dir.join("manager.sock");
    let previous_path = dir.join("previous.sock");
    let manager = UnixDatagram::bind(&manager_path).unwrap();
    let previous = UnixDatagram::bind(&previous_path).unwrap();

    // Outside systemd: nothing sent, no error.
    // Setting the environment is sound here: no other thread of this test
    // binary reads it; this is its only test.
    std::env::remove_var("NOTIFY_SOCKET");
    std::env::remove_var("STOPPABLE_READY_SOCKET");
    assert!(!stoppable::notify::ready().unwrap());

    std::env::set_var("NOTIFY_SOCKET", &manager_path);
    assert!(stoppable::notify::stopping().unwrap());
    assert_eq!(received(&manager), "STOPPING=1");
    assert!(stoppable::notify::main_pid(42).unwrap());
    assert_eq!(received(&manager), "MAINPID=42");

    // A handoff's new process tells both.
    std::env::set_var("STOPPABLE_READY_SOCKET", &previous_path);
    assert!(stoppable::notify::ready().unwrap());
    assert_eq!(received(&manager), "READY=1");
    assert_eq!(received(&previous), "READY=1");

    // An abstract socket name (Linux).
    #[cfg(target_os = "linux")]
    {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("stoppable-notify-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let abstract_manager = UnixDatagram::bind_addr(&addr).unwrap();
        std::env::set_var("NOTIFY_SOCKET", format!("@{name}"));
        std::env::remove_var("STOPPABLE_READY_SOCKET");
        assert!(stoppable::notify::ready().unwrap());
        assert_eq!(received(&abstract_manager), "READY=1");
    }
    std::env::remove_var("NOTIFY_SOCKET");

    // The handoff: a new process that exits, or is never ready, is an
    // error, and this process keeps its socket.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let exits = stoppable::handoff::start(
        Command::new("true"),
        &[listener.as_fd()],
        Duration::from_secs(10),
    );
    let e = exits.expect_err("a process that exits is not a successor");
    assert!(e.to_string().contains("exited before it was ready"), "{e}");
    let mut sleeper = Command::new("sleep");
    sleeper.arg("10");
    let slow = stoppable::handoff::start(sleeper, &[listener.as_fd()], Duration::from_millis(200));
    let e = slow.expect_err("a process never ready is not a successor");
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    // A new process that takes the passed sockets (two: the second may sit
    // where the first must go) and says READY=1.
    let second = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut ready = Command::new(std::env::current_exe().unwrap());
    ready
        .args([
            "--exact",
            "notifications_reach_the_manager_and_the_previous_process",
        ])
        .env(CHILD, "1")
        .env(
            "EXPECTED_ADDRS",
            format!(
                "{},{}",
                listener.local_addr().unwrap(),
                second.local_addr().unwrap()
            ),
        );
    let both = [listener.as_fd(), second.as_fd()];
    let mut child = stoppable::handoff::start(ready, &both, Duration::from_secs(10))
        .expect("the new process says it is ready");
    assert!(child.wait().unwrap().success());
    assert!(
        listener.local_addr().is_ok(),
        "this process keeps its socket"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
