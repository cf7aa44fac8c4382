//! Measurement helpers of the benchmark: resident memory and CPU time of
//! this process read from /proc, exact percentiles of samples, and the
//! result lines a scenario process prints for the parent to collect.

use std::fs;

/// Clock ticks per second of the utime and stime fields of /proc/PID/stat
/// (the kernel's USER_HZ, 100 on x86-64 and AArch64 Linux).
pub const TICKS_PER_SECOND: f64 = 100.0;

/// Prefix of the lines a scenario process prints with one result each.
pub const RESULT_PREFIX: &str = "RESULT";

/// Prints one `RESULT name value` line on stdout for the parent process.
pub fn report(name: &str, value: f64) {
    println!("{RESULT_PREFIX} {name} {value}");
}

/// Returns the resident set size of this process (VmRSS), in bytes.
pub fn resident_bytes() -> u64 {
    let status = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .expect("VmRSS in kB in /proc/self/status");
    kib * 1024
}

/// Returns the CPU time of this process so far (user and system, every
/// thread, exited ones included), in clock ticks.
pub fn cpu_ticks() -> u64 {
    let stat = fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    // The command name in brackets may contain spaces, so fields are counted
    // from the last ')'. fields[0] is field 3 (state), and utime and stime
    // are fields 14 and 15.
    let after_name = &stat[stat.rfind(')').expect("command name in /proc/self/stat") + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |index: usize| -> u64 { fields[index].parse().expect("numeric field in stat") };
    field(11) + field(12)
}

/// Largest value a `MillisHistogram` counts apart; larger ones count as it.
const HISTOGRAM_MAX_MS: usize = 600_000;

/// Samples counted per whole millisecond, so percentiles of millions of
/// samples are exact in fixed memory.
pub struct MillisHistogram {
    counts: Vec<u64>,
    total: u64,
}

impl MillisHistogram {
    pub fn new() -> Self {
        MillisHistogram {
            counts: vec![0; HISTOGRAM_MAX_MS + 1],
            total: 0,
        }
    }

    /// Counts one sample; negative values count as 0.
    pub fn record(&mut self, millis: i64) {
        let bin = (millis.max(0) as usize).min(HISTOGRAM_MAX_MS);
        self.counts[bin] += 1;
        self.total += 1;
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// Returns the nearest-rank percentile: the smallest value that at least
    /// `percent` % of the samples do not exceed. `None` without samples.
    pub fn percentile(&self, percent: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((percent / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (millis, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(millis as u64);
            }
        }
        Some(HISTOGRAM_MAX_MS as u64)
    }
}

/// Returns the nearest-rank percentile of `values`, sorting them in place.
pub fn percentile_of(values: &mut [f64], percent: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((percent / 100.0) * values.len() as f64).ceil().max(1.0) as usize;
    Some(values[rank.min(values.len()) - 1])
}
