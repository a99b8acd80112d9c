//! The application's own tasks in the stop (B24): a task a handler starts
//! holds the stop until it ends, within the grace; at the grace deadline it
//! is cancelled, and the report says so.

use std::time::Duration;

use crate::client::Conn;
use crate::runtimes::{Options, TestRuntime};
use crate::wait::until;

/// A task that ends 100 ms into the drain holds the stop that long, and
/// the report counts it finished.
pub fn b24_a_tracked_task_holds_the_stop_until_it_ends<R: TestRuntime>() {
    let server = R::start(Options::default());
    let mut conn = Conn::open(server.addr);
    conn.get("/task/after-drain");
    assert_eq!(conn.response().expect("answered").text(), "started");
    assert_eq!(server.stopper.counts().tasks, 1);
    drop(conn);
    let report = server.stop();
    assert!(report.graceful, "{report:?}");
    assert_eq!(
        (report.tasks_finished, report.tasks_cancelled),
        (1, 0),
        "{report:?}"
    );
    // Without the wait the stop would end as soon as the connection did.
    assert!(report.elapsed >= Duration::from_millis(100), "{report:?}");
}

/// A task still running at the grace deadline is cancelled: the stop ends
/// at the deadline, not graceful, and the task's future is gone.
pub fn b24_a_task_running_at_the_grace_deadline_is_cancelled<R: TestRuntime>() {
    let server = R::start(Options {
        grace: Some(Duration::from_millis(200)),
        ..Options::default()
    });
    let mut conn = Conn::open(server.addr);
    conn.get("/task/hang");
    assert_eq!(conn.response().expect("answered").text(), "started");
    drop(conn);
    let report = server.stop();
    assert!(!report.graceful, "{report:?}");
    assert_eq!(
        (report.tasks_finished, report.tasks_cancelled),
        (0, 1),
        "{report:?}"
    );
    assert_eq!(server.stopper.counts().tasks, 0);
    until("the cancelled task's future is gone", || {
        !server.control.any_task_left()
    });
}
