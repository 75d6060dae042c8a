//! The `fake` driver: simulated nodes that run nothing.
//!
//! It exists only so that the scheduler, the reconcilers and the APIs can be
//! tested and measured at thousands of nodes and instances on one small
//! machine. It keeps instances in memory and answers as a real node would;
//! it never stands in for a real driver where a test is about running
//! instances.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::{
    Capacity, ComputeDriver, DriverError, DriverResult, EventSink, InstanceSpec, Observed, Power,
    SnapshotSink,
};

#[derive(Debug, Clone)]
struct FakeInstance {
    running: bool,
    console: Vec<u8>,
    /// The resources of the last start or in-place update.
    resources: Option<crate::Resources>,
}

/// A simulated node with the given capacity.
#[derive(Debug)]
pub struct FakeDriver {
    capacity: Capacity,
    instances: Mutex<BTreeMap<String, FakeInstance>>,
}

impl FakeDriver {
    pub fn new(capacity: Capacity) -> Self {
        FakeDriver {
            capacity,
            instances: Mutex::new(BTreeMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, FakeInstance>> {
        self.instances.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The resources the instance runs with (its last start or in-place
    /// update), for tests of re-applied specs.
    pub fn resources(&self, id: &str) -> Option<crate::Resources> {
        self.lock().get(id).and_then(|i| i.resources.clone())
    }

    fn observed(&self, id: &str) -> Observed {
        match self.lock().get(id) {
            None => Observed::absent(),
            Some(i) => Observed {
                power: if i.running {
                    Power::Running { pid: pid_of(id) }
                } else {
                    Power::Stopped
                },
                oom_kills: 0,
                netns: None,
                exit: None,
                nics: Vec::new(),
            },
        }
    }
}

fn pid_of(id: &str) -> u32 {
    // A stable made-up pid per instance: the fake runs no process.
    id.bytes()
        .fold(1000u32, |a, b| a.wrapping_mul(31).wrapping_add(b as u32))
        % 4_000_000
        + 1000
}

#[async_trait::async_trait]
impl ComputeDriver for FakeDriver {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn capacity(&self) -> DriverResult<Capacity> {
        Ok(self.capacity.clone())
    }

    fn set_event_sink(&self, _sink: EventSink) {}

    async fn ensure_running(&self, spec: &InstanceSpec) -> DriverResult<Observed> {
        {
            let mut map = self.lock();
            let inst = map.entry(spec.id.clone()).or_insert_with(|| FakeInstance {
                running: false,
                console: Vec::new(),
                resources: None,
            });
            if !inst.running {
                inst.running = true;
                inst.resources = Some(spec.resources.clone());
                inst.console
                    .extend_from_slice(format!("fake: {} booted\n", spec.hostname).as_bytes());
            }
        }
        Ok(self.observed(&spec.id))
    }

    async fn apply(&self, spec: &InstanceSpec) -> DriverResult<Observed> {
        if let Some(i) = self.lock().get_mut(&spec.id).filter(|i| i.running) {
            i.resources = Some(spec.resources.clone());
        }
        Ok(self.observed(&spec.id))
    }

    async fn ensure_stopped(&self, id: &str, _grace: Duration) -> DriverResult<Observed> {
        if let Some(i) = self.lock().get_mut(id) {
            i.running = false;
        }
        Ok(self.observed(id))
    }

    async fn ensure_absent(&self, id: &str) -> DriverResult<()> {
        self.lock().remove(id);
        Ok(())
    }

    async fn observe(&self, id: &str) -> DriverResult<Observed> {
        Ok(self.observed(id))
    }

    async fn list(&self) -> DriverResult<Vec<String>> {
        Ok(self.lock().keys().cloned().collect())
    }

    async fn console(&self, id: &str, max_bytes: usize) -> DriverResult<Vec<u8>> {
        let map = self.lock();
        let c = map.get(id).map(|i| i.console.as_slice()).unwrap_or(&[]);
        Ok(c[c.len().saturating_sub(max_bytes)..].to_vec())
    }

    /// Simulates only: a fake instance has no disk, so its "snapshot" is a
    /// two-file root filesystem (an empty `/bin/sh`, which makes the image
    /// store take it as a root filesystem, and `/etc/nuage-fake-snapshot`
    /// naming the instance). Enough for image lifecycles at scale; an
    /// image made from it runs on fake nodes only.
    async fn snapshot(&self, spec: &InstanceSpec, out: SnapshotSink) -> DriverResult<()> {
        if !self.lock().contains_key(&spec.id) {
            return Err(DriverError::Failed(format!(
                "instance {} is not on this node",
                spec.id
            )));
        }
        let id = spec.id.clone();
        let write = move || -> std::io::Result<()> {
            let mut tar = tar::Builder::new(out);
            for (path, mode, data) in [
                ("bin/sh", 0o755, &[][..]),
                ("etc/nuage-fake-snapshot", 0o644, id.as_bytes()),
            ] {
                let mut h = tar::Header::new_gnu();
                h.set_mode(mode);
                h.set_size(data.len() as u64);
                h.set_entry_type(tar::EntryType::Regular);
                tar.append_data(&mut h, path, data)?;
            }
            tar.into_inner()?.flush()
        };
        tokio::task::spawn_blocking(write)
            .await
            .map_err(|e| DriverError::failed("fake snapshot", e))?
            .map_err(|e| DriverError::failed("fake snapshot", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Resources;

    fn spec(id: &str) -> InstanceSpec {
        InstanceSpec {
            id: id.into(),
            hostname: "h".into(),
            rootfs: "/nonexistent".into(),
            command: vec!["/sbin/init".into()],
            env: vec![],
            workdir: "/".into(),
            resources: Resources {
                vcpus: 1,
                memory_mib: 512,
                pids_limit: 100,
                io_weight: 100,
                disk_gib: 1,
            },
            config_drive: vec![],
            nics: vec![],
            dns_domain: None,
        }
    }

    #[tokio::test]
    async fn lifecycle_is_idempotent() {
        let d = FakeDriver::new(Capacity {
            vcpus: 4,
            ram_mib: 4096,
            disk_gib: 10,
            arch: "x86_64".into(),
            hypervisor: "fake".into(),
        });
        let s = spec("i-1");
        assert!(matches!(
            d.ensure_running(&s).await.expect("run").power,
            Power::Running { .. }
        ));
        assert!(matches!(
            d.ensure_running(&s).await.expect("run again").power,
            Power::Running { .. }
        ));
        assert_eq!(d.console("i-1", 1024).await.expect("console").len(), 15);
        assert_eq!(
            d.ensure_stopped("i-1", Duration::ZERO)
                .await
                .expect("stop")
                .power,
            Power::Stopped
        );
        assert_eq!(d.list().await.expect("list"), vec!["i-1".to_string()]);
        d.ensure_absent("i-1").await.expect("absent");
        d.ensure_absent("i-1").await.expect("absent twice");
        assert_eq!(
            d.observe("i-1").await.expect("observe").power,
            Power::Absent
        );
    }

    #[tokio::test]
    async fn snapshot_is_a_root_filesystem_naming_the_instance() {
        let d = FakeDriver::new(Capacity {
            vcpus: 1,
            ram_mib: 512,
            disk_gib: 1,
            arch: "x86_64".into(),
            hypervisor: "fake".into(),
        });
        let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().expect("lock").extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let s = spec("i-2");
        assert!(d.snapshot(&s, Box::new(Sink(buf.clone()))).await.is_err());
        d.ensure_running(&s).await.expect("run");
        d.snapshot(&s, Box::new(Sink(buf.clone())))
            .await
            .expect("snapshot");
        let bytes = buf.lock().expect("lock").clone();
        let mut a = tar::Archive::new(bytes.as_slice());
        let mut found = Vec::new();
        for e in a.entries().expect("entries") {
            let mut e = e.expect("entry");
            let path = e.path().expect("path").display().to_string();
            let mut body = String::new();
            std::io::Read::read_to_string(&mut e, &mut body).expect("read");
            found.push((path, body));
        }
        assert_eq!(
            found,
            [
                ("bin/sh".to_string(), String::new()),
                ("etc/nuage-fake-snapshot".to_string(), "i-2".to_string())
            ]
        );
    }
}
