//! What the relay process costs during a run, from /proc: CPU seconds (utime + stime) and
//! memory, summed over the process and its descendants (Kamailio forks workers).
//!
//! Memory is VmRSS for a single process. For a process tree it is the sum of Pss
//! (/proc/PID/smaps_rollup), since the workers share memory that VmRSS would count once per
//! process. A sampler thread reads it every 20 ms to find the peak during the run.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;

/// Resource use of the relay over one run.
#[derive(Debug, Clone, Serialize)]
pub struct Usage {
    pub pid: u32,
    /// Processes measured (the relay and its descendants).
    pub processes: usize,
    /// `rss` (one process) or `pss` (sum over a process tree).
    pub memory_kind: &'static str,
    pub cpu_s: f64,
    pub mem_start_kib: u64,
    pub mem_peak_kib: u64,
    pub mem_end_kib: u64,
    /// VmHWM summed over the processes: the peak RSS over each process's lifetime.
    pub hwm_kib: u64,
}

/// Watches a relay process during a run.
pub struct Watch {
    pid: u32,
    pids: Vec<u32>,
    start_ticks: u64,
    start_mem: u64,
    stop: Arc<AtomicBool>,
    sampler: Option<JoinHandle<u64>>,
}

fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// Fields of /proc/PID/stat after the command name: (ppid, utime + stime in ticks).
fn stat(pid: u32) -> Option<(u32, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): ppid is field 4, utime 14, stime 15.
    let ppid = f.get(1)?.parse().ok()?;
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((ppid, utime + stime))
}

/// `pid` and all its descendants.
pub fn process_tree(pid: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if let Some((ppid, _)) = stat(p) {
                children.entry(ppid).or_default().push(p);
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        if let Some(c) = children.get(&out[i]) {
            out.extend(c);
        }
        i += 1;
    }
    out
}

fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter().filter_map(|&p| stat(p)).map(|(_, t)| t).sum()
}

/// A `Key:   123 kB` line of a /proc status-like file.
fn kib_field(path: &str, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(path).ok()?;
    s.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn memory(pids: &[u32]) -> u64 {
    if pids.len() == 1 {
        kib_field(&format!("/proc/{}/status", pids[0]), "VmRSS:").unwrap_or(0)
    } else {
        pids.iter()
            .filter_map(|p| kib_field(&format!("/proc/{p}/smaps_rollup"), "Pss:"))
            .sum()
    }
}

/// The current memory of `pid` (and descendants), in KiB, as [`Usage`] measures it.
pub fn memory_kib(pid: u32) -> u64 {
    memory(&process_tree(pid))
}

impl Watch {
    pub fn start(pid: u32) -> anyhow::Result<Watch> {
        if stat(pid).is_none() {
            anyhow::bail!("--relay-pid {pid}: no such process (or /proc/{pid}/stat unreadable)");
        }
        let pids = process_tree(pid);
        let start_ticks = cpu_ticks(&pids);
        let start_mem = memory(&pids);
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let stop = stop.clone();
            let pids = pids.clone();
            std::thread::Builder::new()
                .name("relay-sampler".into())
                .spawn(move || {
                    let mut peak = 0;
                    while !stop.load(Ordering::Relaxed) {
                        peak = peak.max(memory(&pids));
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    peak
                })?
        };
        Ok(Watch {
            pid,
            pids,
            start_ticks,
            start_mem,
            stop,
            sampler: Some(sampler),
        })
    }

    pub fn finish(mut self) -> Usage {
        self.stop.store(true, Ordering::Relaxed);
        let peak = self.sampler.take().and_then(|t| t.join().ok()).unwrap_or(0);
        let end_ticks = cpu_ticks(&self.pids);
        let end_mem = memory(&self.pids);
        let hwm = self
            .pids
            .iter()
            .filter_map(|p| kib_field(&format!("/proc/{p}/status"), "VmHWM:"))
            .sum();
        Usage {
            pid: self.pid,
            processes: self.pids.len(),
            memory_kind: if self.pids.len() == 1 { "rss" } else { "pss" },
            cpu_s: end_ticks.saturating_sub(self.start_ticks) as f64 / clk_tck(),
            mem_start_kib: self.start_mem,
            mem_peak_kib: peak.max(end_mem).max(self.start_mem),
            mem_end_kib: end_mem,
            hwm_kib: hwm,
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// CPU seconds this process (the load generator) has used so far.
pub fn self_cpu_s() -> f64 {
    // SAFETY: getrusage writes into the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The 1, 5 and 15 minute load averages.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Raise RLIMIT_NOFILE to its hard limit; returns the new soft limit.
pub fn raise_nofile() -> u64 {
    // SAFETY: getrlimit/setrlimit read and write the struct we pass.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 0;
        }
        if r.rlim_cur < r.rlim_max {
            let want = libc::rlimit {
                rlim_cur: r.rlim_max,
                rlim_max: r.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                return want.rlim_cur as u64;
            }
        }
        r.rlim_cur as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watches_itself() {
        let pid = std::process::id();
        let w = Watch::start(pid).unwrap();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let u = w.finish();
        assert!(u.processes >= 1);
        assert!(u.mem_peak_kib > 0);
        assert!(u.hwm_kib > 0);
        assert!(!loadavg().is_empty());
        assert!(raise_nofile() > 0);
    }
}
