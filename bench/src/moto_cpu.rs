//! moto's own CPU time, read from `/proc/<pid>/stat`.
//!
//! moto runs its requests in one Python process, and Python's GIL lets
//! that process run Python code on one core at a time: what moto can carry
//! is about one CPU-second of its own work per second, whatever the number
//! of clients. Its CPU time over a run therefore says how much of its
//! capacity the run used (CPU-seconds over wall seconds), and what the
//! run's messages cost it (CPU-seconds over messages), both for the run's
//! own requests as they came, with no estimate of what each kind costs.
//! Work done outside the GIL (system calls, socket I/O) can take it a few
//! per cent past one core.

use std::time::Instant;

/// Reads one process's CPU time.
#[derive(Debug, Clone, Copy)]
pub struct MotoCpu {
    pid: u32,
}

/// The clock ticks per second `/proc` counts in: `USER_HZ`, which Linux
/// fixes at 100 for user space on every architecture the bench runs on.
const USER_HZ: f64 = 100.0;

impl MotoCpu {
    /// `None` unless `pid` names a moto server whose CPU time can be read
    /// (a stale pid file could name any process).
    pub fn of(pid: u32) -> Option<MotoCpu> {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        if !String::from_utf8_lossy(&cmdline).contains("moto_server") {
            return None;
        }
        let cpu = MotoCpu { pid };
        cpu.seconds().map(|_| cpu)
    }

    /// User plus system CPU time so far, in seconds.
    pub fn seconds(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).ok()?;
        cpu_seconds(&stat)
    }

    /// Starts measuring a stretch of work.
    pub fn start(&self) -> Option<Stretch> {
        Some(Stretch {
            cpu: *self,
            cpu_at_start: self.seconds()?,
            wall_at_start: Instant::now(),
        })
    }
}

/// A stretch of work being measured.
#[derive(Debug)]
pub struct Stretch {
    cpu: MotoCpu,
    cpu_at_start: f64,
    wall_at_start: Instant,
}

/// What moto spent over a stretch.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Spent {
    pub cpu_secs: f64,
    pub wall_secs: f64,
}

impl Spent {
    /// The share of one core moto used: 1.0 is all it can carry.
    pub fn busy(&self) -> f64 {
        self.cpu_secs / self.wall_secs.max(1e-9)
    }
}

impl Stretch {
    pub fn end(self) -> Option<Spent> {
        Some(Spent {
            cpu_secs: self.cpu.seconds()? - self.cpu_at_start,
            wall_secs: self.wall_at_start.elapsed().as_secs_f64(),
        })
    }
}

/// utime plus stime, fields 14 and 15 of `/proc/<pid>/stat`, in seconds.
/// The command name (field 2) is in parentheses and may hold spaces, so
/// fields are counted from its closing parenthesis.
fn cpu_seconds(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_past_a_command_name_with_spaces() {
        let stat =
            "4242 (python (moto) x) S 1 4242 4242 0 -1 4194560 9 0 0 0 1234 566 0 0 20 0 3 0";
        assert_eq!(cpu_seconds(stat), Some(18.0));
        assert_eq!(cpu_seconds("4242 (python) S 1"), None);
    }

    #[test]
    fn only_a_moto_server_is_read() {
        // This test binary is not moto: a stale pid file naming it is
        // refused rather than measured.
        assert!(MotoCpu::of(std::process::id()).is_none());
        assert!(MotoCpu::of(u32::MAX).is_none());
        let me = MotoCpu {
            pid: std::process::id(),
        };
        assert!(me.seconds().expect("own stat") >= 0.0);
    }
}
