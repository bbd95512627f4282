//! Where a worker reads its device: `/proc` on the CPU (memory, busy share, this process's
//! resident set), NVML on NVIDIA GPUs. Every `/proc` field is read by one parser.

use orfeas_vocab::Device;

/// Free and total memory of the device a batch runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceMemory {
    pub total_bytes: u64,
    pub free_bytes: u64,
}

impl DeviceMemory {
    pub fn used_bytes(&self) -> u64 {
        self.total_bytes.saturating_sub(self.free_bytes)
    }
}

/// A `Name:   123 kB` field of a `/proc` file, in bytes.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

fn proc_field(file: &str, name: &str) -> Option<u64> {
    kib_field(&std::fs::read_to_string(file).ok()?, name)
}

/// On CPU: the machine's memory (`MemTotal`, `MemAvailable` of /proc/meminfo).
pub fn system_memory() -> std::io::Result<DeviceMemory> {
    let text = std::fs::read_to_string("/proc/meminfo")?;
    match (
        kib_field(&text, "MemTotal"),
        kib_field(&text, "MemAvailable"),
    ) {
        (Some(total_bytes), Some(free_bytes)) => Ok(DeviceMemory {
            total_bytes,
            free_bytes,
        }),
        _ => Err(std::io::Error::other(
            "MemTotal/MemAvailable missing from /proc/meminfo",
        )),
    }
}

/// Peak resident memory of this process since the last reset (Linux `VmHWM`).
pub fn peak_rss_bytes() -> Option<u64> {
    proc_field("/proc/self/status", "VmHWM")
}

/// Current resident memory (`VmRSS`).
pub fn rss_bytes() -> Option<u64> {
    proc_field("/proc/self/status", "VmRSS")
}

/// Resets `VmHWM` to the current RSS, so the next peak is the batch's own.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Total and idle jiffies of the `cpu` line of /proc/stat.
fn cpu_times(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 5 {
        return None;
    }
    Some((v.iter().sum(), v[3] + v[4]))
}

/// Busy share of the machine's CPUs between two reads of /proc/stat (the CPU "device"'s
/// utilisation).
#[derive(Debug, Default)]
pub struct CpuSampler {
    last: Option<(u64, u64)>,
}

impl CpuSampler {
    /// Utilisation (0–1) since the previous reading; `None` on the first.
    pub fn sample_from(&mut self, stat: &str) -> Option<f64> {
        let now = cpu_times(stat)?;
        let prev = self.last.replace(now)?;
        let total = now.0.saturating_sub(prev.0);
        let idle = now.1.saturating_sub(prev.1);
        (total > 0).then(|| 1.0 - idle as f64 / total as f64)
    }

    pub fn sample(&mut self) -> Option<f64> {
        self.sample_from(&std::fs::read_to_string("/proc/stat").ok()?)
    }
}

/// Where a worker reads its device's memory and utilisation.
pub enum DeviceProbe {
    Cpu,
    Nvml {
        nvml: Box<nvml_wrapper::Nvml>,
        index: u32,
    },
}

impl std::fmt::Debug for DeviceProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceProbe::Cpu => f.write_str("cpu"),
            DeviceProbe::Nvml { index, .. } => write!(f, "cuda:{index} (NVML)"),
        }
    }
}

impl DeviceProbe {
    /// The CPU, or a GPU through NVML (fails clearly when no NVIDIA driver is loaded).
    pub fn open(device: Device) -> Result<DeviceProbe, String> {
        match device {
            Device::Cpu => Ok(DeviceProbe::Cpu),
            Device::Cuda(index) => {
                let nvml = nvml_wrapper::Nvml::init().map_err(|e| {
                    format!(
                        "device {device}: NVML is not available ({e}); is the NVIDIA driver installed?"
                    )
                })?;
                nvml.device_by_index(index)
                    .map_err(|e| format!("device {device}: {e}"))?;
                Ok(DeviceProbe::Nvml {
                    nvml: Box::new(nvml),
                    index,
                })
            }
        }
    }

    pub fn memory(&self) -> std::io::Result<DeviceMemory> {
        match self {
            DeviceProbe::Cpu => system_memory(),
            DeviceProbe::Nvml { nvml, index } => {
                let m = nvml
                    .device_by_index(*index)
                    .and_then(|d| d.memory_info())
                    .map_err(std::io::Error::other)?;
                Ok(DeviceMemory {
                    total_bytes: m.total,
                    free_bytes: m.free,
                })
            }
        }
    }

    /// The device's memory as this worker may use it: capped by `limit` (a share of a machine
    /// or a container's limit), of which this process already holds its resident set.
    pub fn available_memory(&self, limit: Option<u64>) -> Option<DeviceMemory> {
        let system = self.memory().ok()?;
        let Some(limit) = limit else {
            return Some(system);
        };
        let own = rss_bytes().unwrap_or(0);
        Some(DeviceMemory {
            total_bytes: limit.min(system.total_bytes),
            free_bytes: limit.saturating_sub(own).min(system.free_bytes),
        })
    }

    /// Busy share (0–1): since the sampler's last reading on CPU, NVML's recent sample on GPUs.
    pub fn utilization(&self, cpu: &mut CpuSampler) -> Option<f64> {
        match self {
            DeviceProbe::Cpu => cpu.sample(),
            DeviceProbe::Nvml { nvml, index } => nvml
                .device_by_index(*index)
                .and_then(|d| d.utilization_rates())
                .ok()
                .map(|u| f64::from(u.gpu) / 100.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_fields_are_read_by_name() {
        let status = "Name:\torfeas\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(kib_field(status, "VmHWM"), Some(2 << 20));
        assert_eq!(kib_field(status, "VmRSS"), Some(1 << 20));
        assert_eq!(kib_field(status, "VmSwap"), None);
        // A name that is a prefix of another is not confused with it.
        let meminfo = "MemTotalish: 1 kB\nMemTotal: 8 kB\n";
        assert_eq!(kib_field(meminfo, "MemTotal"), Some(8192));
    }

    #[test]
    fn cpu_utilisation_is_the_busy_share_between_readings() {
        let mut s = CpuSampler::default();
        // user nice system idle iowait ...
        assert_eq!(
            s.sample_from("cpu  100 0 100 700 100 0 0\ncpu0 1 1 1 1 1\n"),
            None
        );
        // +300 busy (user 200, system 100), +100 idle: 75 % busy.
        let u = s
            .sample_from("cpu  300 0 200 800 100 0 0\n")
            .expect("second reading");
        assert!((u - 0.75).abs() < 1e-9, "{u}");
        assert_eq!(s.sample_from("garbage"), None);
    }

    #[test]
    fn devices_open_or_say_why_not() {
        let cpu = DeviceProbe::open(Device::Cpu).expect("cpu");
        let m = cpu.memory().expect("memory");
        assert!(m.total_bytes > 0 && m.free_bytes <= m.total_bytes);
        let capped = cpu.available_memory(Some(1 << 30)).expect("capped");
        assert_eq!(capped.total_bytes, (1u64 << 30).min(m.total_bytes));
        // On a machine without the NVIDIA driver the error names NVML; with one, cuda:0 opens.
        if !std::path::Path::new("/proc/driver/nvidia").exists() {
            let e = DeviceProbe::open(Device::Cuda(0)).expect_err("no driver here");
            assert!(e.contains("NVML") && e.contains("cuda:0"), "{e}");
        }
    }
}
