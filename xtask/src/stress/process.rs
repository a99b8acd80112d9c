//! What the stress runs that start processes share: building an example,
//! reading a child's stdout line by line with a deadline, signalling it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

/// How long any line of a child may take: a deadline, not a sleep.
pub const LINE_DEADLINE: Duration = Duration::from_secs(30);

/// Builds `example` (release); its path.
pub fn build_example(example: &str) -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    eprintln!("[stress] building the {example} example (release)");
    let built = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "--example", example])
        .current_dir(&root)
        .status();
    if !matches!(built, Ok(status) if status.success()) {
        eprintln!("stress: the {example} example does not build");
        return None;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Some(target.join("release").join("examples").join(example))
}

/// A child's stdout, a line at a time, for async code.
pub fn lines(stdout: std::process::ChildStdout) -> UnboundedReceiver<String> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    forward_lines(stdout, move |line| tx.send(line).is_ok());
    rx
}

/// Hands each line of a child's stdout to `send`, from a thread of its
/// own, until `send` says false or the output ends.
pub fn forward_lines(
    stdout: std::process::ChildStdout,
    mut send: impl FnMut(String) -> bool + Send + 'static,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if !send(line) {
                return;
            }
        }
    });
}

/// The next line, within [`LINE_DEADLINE`].
pub async fn next_line(lines: &mut UnboundedReceiver<String>) -> Option<String> {
    tokio::time::timeout(LINE_DEADLINE, lines.recv())
        .await
        .ok()
        .flatten()
}

pub use crate::signal::send as signal;

/// `FLAG N [--runtime R]`, as `--handoff` and `--rollout` take them: the
/// count and the runtimes to run (all unless one is named); `None` on a bad
/// or missing argument.
pub fn count_and_runtimes<'a>(
    args: &[String],
    flag: &str,
    all: &[&'a str],
) -> Option<(usize, Vec<&'a str>)> {
    let mut count = None;
    let mut runtimes = all.to_vec();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match (arg.as_str(), iter.next()) {
            (a, Some(n)) if a == flag => count = Some(n.parse::<usize>().ok()?),
            ("--runtime", Some(r)) if all.contains(&r.as_str()) => {
                runtimes = all.iter().copied().filter(|x| x == r).collect();
            }
            _ => return None,
        }
    }
    Some((count?, runtimes))
}
