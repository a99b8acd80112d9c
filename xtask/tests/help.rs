//! Every task answers `--help` with the full usage, on stdout, exit 0; an
//! unknown option is an error, exit 2, with the usage on stderr.

use std::process::Command;

fn xtask(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("xtask runs")
}

#[test]
fn every_task_answers_help_with_the_full_usage() {
    for args in [
        &["--help"][..],
        &["help"],
        &["bench", "--help"],
        &["stress", "--help"],
        &["stress", "-h"],
        &["stress", "--chaos", "10", "--help"],
        &["stress", "--handoff", "5", "--help"],
        &["stress", "--rollout", "5", "--help"],
    ] {
        let out = xtask(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let usage = String::from_utf8_lossy(&out.stdout);
        for task in [
            "bench [--quick]",
            "stress --handoff N",
            "stress --rollout N",
            "stress --chaos N",
        ] {
            assert!(usage.contains(task), "{args:?}: {task} missing in {usage}");
        }
    }
}

#[test]
fn unknown_options_exit_2() {
    for args in [
        &["bench", "--fast"][..],
        &["stress", "--stops"],
        &["stress", "--rollout", "x"],
        &["nope"],
    ] {
        let out = xtask(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}: an error on stderr");
    }
}
