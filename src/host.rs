//! The machine's current resource use for the Summary page (SPEC §6):
//! CPU, memory, disk of the data directory, load and uptime. A background
//! task samples every few seconds into a shared snapshot, so requests only
//! read it (CPU usage needs two samples apart anyway).

use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use sysinfo::{Disks, System};
use tokio::sync::watch;

#[derive(Clone, Debug, Default, Serialize)]
pub struct HostSnapshot {
    pub cpu_percent: f32,
    pub cpus: usize,
    pub memory_used: u64,
    pub memory_total: u64,
    pub disk_used: u64,
    pub disk_total: u64,
    /// The mount point holding the data directory.
    pub disk_mount: String,
    pub load_one: f64,
    pub load_five: f64,
    pub load_fifteen: f64,
    pub uptime_seconds: u64,
}

#[derive(Clone)]
pub struct HostStats {
    snapshot: Arc<RwLock<HostSnapshot>>,
    data_dir: PathBuf,
}

impl HostStats {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            snapshot: Arc::new(RwLock::new(HostSnapshot::default())),
            data_dir: std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf()),
        }
    }

    pub fn snapshot(&self) -> HostSnapshot {
        self.snapshot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Samples until `stop` changes. sysinfo reads /proc synchronously, so
    /// each sample runs on the blocking pool.
    pub async fn sample_every(self, every: Duration, mut stop: watch::Receiver<bool>) {
        let system = match System::new() {
            Ok(s) => Arc::new(std::sync::Mutex::new(s)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read this machine's resource use; the Summary will show zeros");
                return;
            }
        };
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            let (me, system) = (self.clone(), Arc::clone(&system));
            let _ = tokio::task::spawn_blocking(move || {
                let mut sys = system.lock().unwrap_or_else(|p| p.into_inner());
                let snap = me.sample(&mut sys);
                *me.snapshot.write().unwrap_or_else(|p| p.into_inner()) = snap;
            })
            .await;
        }
    }

    fn sample(&self, sys: &mut System) -> HostSnapshot {
        sys.refresh_cpu_usage();
        sys.refresh_memory();
        let load = System::load_average().unwrap_or_default();
        let (disk_used, disk_total, disk_mount) = self.disk();
        HostSnapshot {
            cpu_percent: sys.global_cpu_usage(),
            cpus: sys.cpus().len(),
            memory_used: sys.used_memory(),
            memory_total: sys.total_memory(),
            disk_used,
            disk_total,
            disk_mount,
            load_one: load.one,
            load_five: load.five,
            load_fifteen: load.fifteen,
            uptime_seconds: System::uptime().unwrap_or_default(),
        }
    }

    /// The disk whose mount point is the longest prefix of the data dir.
    fn disk(&self) -> (u64, u64, String) {
        let Ok(disks) = Disks::new_with_refreshed_list() else {
            return (0, 0, String::new());
        };
        disks
            .iter()
            .filter(|d| self.data_dir.starts_with(d.mount_point()))
            .max_by_key(|d| d.mount_point().as_os_str().len())
            .map(|d| {
                let total = d.total_space();
                (
                    total.saturating_sub(d.available_space()),
                    total,
                    d.mount_point().display().to_string(),
                )
            })
            .unwrap_or_default()
    }
}
