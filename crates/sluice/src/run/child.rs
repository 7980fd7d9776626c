//! The wrapped process: spawning it, forwarding signals to it, and turning
//! how it ended into sluice's exit code.
//!
//! SIGINT, SIGTERM and SIGHUP sent to sluice are forwarded to the child, and
//! sluice keeps running until the child exits. One exception avoids a double
//! Ctrl-C: when sluice and the child are in the terminal's foreground process
//! group, the terminal already delivered SIGINT to both, so it is not sent
//! again (a `kill -INT` aimed at sluice alone is then not forwarded either).

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::os::unix::process::ExitStatusExt as _;
use std::process::{ExitStatus, Stdio};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::signal::unix::{signal, SignalKind};

/// How the child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    pub fn from_status(status: ExitStatus) -> Self {
        match (status.code(), status.signal()) {
            (Some(code), _) => Exit::Code(code),
            (None, Some(signal)) => Exit::Signal(signal),
            (None, None) => Exit::Code(1),
        }
    }

    /// The shell's convention: the status, or 128 + the signal number.
    pub fn code(self) -> u8 {
        match self {
            Exit::Code(code) => (code & 0xff) as u8,
            Exit::Signal(signal) => u8::try_from(128 + signal.clamp(0, 127)).unwrap_or(255),
        }
    }

    pub fn is_success(self) -> bool {
        self == Exit::Code(0)
    }
}

impl fmt::Display for Exit {
    /// `Exited with status 3`, `Killed by signal 15 (SIGTERM)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Exit::Code(code) => write!(f, "Exited with status {code}"),
            Exit::Signal(n) => match Signal::try_from(n) {
                Ok(sig) => write!(f, "Killed by signal {n} ({})", sig.as_str()),
                Err(_) => write!(f, "Killed by signal {n}"),
            },
        }
    }
}

/// Why the command did not start, with the shell's exit code for it.
#[derive(Debug)]
pub struct SpawnError {
    pub code: u8,
    pub error: io::Error,
}

/// Starts `argv` with stdout and stderr piped and stdin inherited.
pub fn spawn(argv: &[OsString]) -> Result<Child, SpawnError> {
    let (program, args) = argv.split_first().ok_or_else(|| SpawnError {
        code: 127,
        error: io::Error::new(io::ErrorKind::InvalidInput, "no command given"),
    })?;
    Command::new(program)
        .args(args)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(false)
        .spawn()
        .map_err(|error| SpawnError {
            code: match error.kind() {
                io::ErrorKind::NotFound => 127,
                _ => 126,
            },
            error,
        })
}

/// The command line as one string, for the start message.
pub fn display_command(argv: &[OsString]) -> String {
    argv.iter()
        .map(|a| {
            let a = a.to_string_lossy();
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
                format!("{a:?}")
            } else {
                a.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// SIGINT, SIGTERM and SIGHUP, caught from now on (call before spawning so
/// no signal falls between spawning and forwarding).
pub struct Signals {
    streams: Vec<(Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    pub fn catch() -> io::Result<Self> {
        let wanted = [
            (Signal::SIGINT, SignalKind::interrupt()),
            (Signal::SIGTERM, SignalKind::terminate()),
            (Signal::SIGHUP, SignalKind::hangup()),
        ];
        let mut streams = Vec::with_capacity(wanted.len());
        for (sig, kind) in wanted {
            streams.push((sig, signal(kind)?));
        }
        Ok(Signals { streams })
    }

    /// Forwards caught signals to `pid` until the task is dropped.
    pub async fn forward_to(mut self, pid: u32) {
        let Ok(raw) = i32::try_from(pid) else { return };
        let pid = Pid::from_raw(raw);
        let tty_delivers_sigint = in_terminal_foreground();
        loop {
            let received =
                futures_util::future::select_all(self.streams.iter_mut().map(|(sig, stream)| {
                    Box::pin(async move { stream.recv().await.map(|_| *sig) })
                }))
                .await
                .0;
            let Some(sig) = received else { return };
            if sig == Signal::SIGINT && tty_delivers_sigint {
                continue;
            }
            tracing::debug!(signal = sig.as_str(), "forwarding to the child");
            if let Err(err) = kill(pid, sig) {
                tracing::debug!(%err, "cannot forward the signal");
            }
        }
    }
}

/// Whether sluice (and so the child, which shares its process group) is in
/// the foreground process group of the terminal on stdin, stdout or stderr.
fn in_terminal_foreground() -> bool {
    // SAFETY: getpgrp and tcgetpgrp take no pointers and cannot fail in a
    // way that matters here (tcgetpgrp returns -1 for a non-terminal).
    let own = unsafe { libc::getpgrp() };
    [0, 1, 2]
        .into_iter()
        .any(|fd| unsafe { libc::tcgetpgrp(fd) } == own)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell() {
        assert_eq!(Exit::Code(0).code(), 0);
        assert_eq!(Exit::Code(3).code(), 3);
        assert_eq!(Exit::Code(256 + 7).code(), 7);
        assert_eq!(Exit::Signal(15).code(), 143);
        assert_eq!(Exit::Signal(9).code(), 137);
    }

    #[test]
    fn exit_wording() {
        assert_eq!(Exit::Code(3).to_string(), "Exited with status 3");
        assert_eq!(Exit::Signal(9).to_string(), "Killed by signal 9 (SIGKILL)");
        assert!(Exit::Code(0).is_success());
        assert!(!Exit::Signal(1).is_success());
    }

    #[test]
    fn status_conversion() {
        assert_eq!(
            Exit::from_status(ExitStatus::from_raw(3 << 8)),
            Exit::Code(3)
        );
        assert_eq!(
            Exit::from_status(ExitStatus::from_raw(15)),
            Exit::Signal(15)
        );
    }

    #[test]
    fn commands_display_quoted_when_needed() {
        let argv: Vec<OsString> = ["sh", "-c", "echo hi"].map(OsString::from).to_vec();
        assert_eq!(display_command(&argv), "sh -c \"echo hi\"");
    }

    #[tokio::test]
    async fn missing_commands_are_127() {
        let err = spawn(&[OsString::from("/nonexistent/sluice-test-cmd")]).unwrap_err();
        assert_eq!(err.code, 127);
        let err = spawn(&[]).unwrap_err();
        assert_eq!(err.code, 127);
    }
}
