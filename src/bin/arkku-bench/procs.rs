//! The processes a run starts: servers that live for the whole run, and
//! one-shot commands (`arkku retention run`, `arkku audit verify`, the audit
//! fill) run to the end, with each one's peak resident memory read from
//! `/proc` while it runs, and the CPU time a process used, read the same way.

use std::{
    io::Read,
    net::SocketAddr,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// Peak resident memory so far (VmHWM) of process `pid`, in MiB; 0 once it
/// has exited.
pub fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// User and system CPU time of process `pid` (or `self`), all threads, in
/// seconds: fields 14 and 15 of `/proc/<pid>/stat`, in clock ticks of
/// 1/100 s (USER_HZ, fixed at 100 by the Linux ABI on x86 and arm64).
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; count from the ')' after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// A port nobody listens on yet.
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?)
}

/// A child process killed when dropped (an interrupted run leaves nothing behind).
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A child server killed when dropped.
pub struct Server {
    child: Guard,
    pub addr: SocketAddr,
}

impl Server {
    pub fn spawn(cmd: &mut Command, addr: SocketAddr) -> anyhow::Result<Self> {
        Ok(Server {
            child: Guard(cmd.stdout(Stdio::null()).spawn()?),
            addr,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// Peak resident memory so far, in MiB.
    pub fn peak_rss_mb(&self) -> f64 {
        peak_rss_mb(self.child.0.id())
    }

    pub async fn wait_up(&mut self, what: &str) -> anyhow::Result<()> {
        for _ in 0..300 {
            if let Some(status) = self.child.0.try_wait()? {
                anyhow::bail!("{what} exited at start: {status}");
            }
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("{what} did not start listening on {}", self.addr)
    }
}

/// What a one-shot command left.
pub struct Finished {
    pub stdout: String,
    /// Its peak resident memory, in MiB.
    pub peak_rss_mb: f64,
    /// From spawn to exit.
    pub wall: Duration,
}

/// Runs `cmd` to the end (stderr passes through, so its own progress and
/// summary lines reach the operator), polling its peak RSS until it exits.
/// A non-zero exit is an error.
pub async fn run_to_end(cmd: &mut Command, what: &str) -> anyhow::Result<Finished> {
    let started = Instant::now();
    let mut child = Guard(cmd.stdout(Stdio::piped()).spawn()?);
    let pid = child.0.id();
    // Read stdout on a thread of its own so a chatty child never blocks on a
    // full pipe while we poll.
    let stdout = child.0.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        if let Some(mut s) = stdout {
            s.read_to_string(&mut out)?;
        }
        Ok::<_, std::io::Error>(out)
    });
    let mut peak = 0.0f64;
    let status = loop {
        peak = peak.max(peak_rss_mb(pid));
        if let Some(status) = child.0.try_wait()? {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let wall = started.elapsed();
    let stdout = reader
        .join()
        .map_err(|_| anyhow::anyhow!("reading the output of {what} failed"))??;
    anyhow::ensure!(status.success(), "{what} failed ({status}): {stdout}");
    Ok(Finished {
        stdout,
        peak_rss_mb: peak,
        wall,
    })
}
