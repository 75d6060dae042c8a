//! The busybox guest: an initramfs with busybox-static, the kernel's
//! virtio and power-button modules, and an init that loads them, powers
//! off on the ACPI power button (busybox `acpid`), brings the network up by
//! DHCP, reads its instance id and user data from the metadata service and
//! prints them on the serial console. What `nuage image build busybox-vm`
//! makes (issue 14).

use std::path::Path;

use crate::initramfs::Initramfs;
use crate::kernel::Kernel;
use crate::{DriverError, DriverResult};

/// The guest's init. Busybox's `wget` is not used: Debian's static build
/// crashes; the metadata service is read with `nc`.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /run
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s /bin
export PATH=/bin
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /lib/modules/order); do insmod /lib/modules/$m 2>/dev/null; done
# acpid opens the input devices present when it starts: wait (bounded)
# for the power button's, which devtmpfs makes a moment after the insmod.
n=0; while [ ! -e /dev/input/event0 ] && [ $n -lt 50 ]; do usleep 20000; n=$((n+1)); done
# In the foreground of a background job, logging to the console: as a
# daemon it would exit for want of /var/log/acpid.log.
acpid -f -c /etc/acpi -l /dev/console &
echo "nuage-vm: init running"
ip link set lo up
md() {
  printf 'GET /latest/%s HTTP/1.0\r\nHost: 169.254.169.254\r\n\r\n' "$1" \
    | nc -w 5 169.254.169.254 80 | sed '1,/^\r*$/d'
}
if ip link set eth0 up 2>/dev/null; then
  udhcpc -i eth0 -s /etc/udhcpc.script -q -n -t 10 -T 1 >/dev/null 2>&1 \
    && echo "nuage-vm: eth0 $(ip -4 -o addr show eth0 | awk '{print $4}')" \
    || echo "nuage-vm: no DHCP answer on eth0"
  id=$(md meta-data/instance-id)
  echo "nuage-vm: instance-id ${id}"
  [ -n "$id" ] && hostname "$id"
  md user-data > /run/user-data
  echo "nuage-vm: user-data $(wc -c < /run/user-data) bytes"
  cat /run/user-data
  if head -c 2 /run/user-data | grep -q '#!'; then
    chmod +x /run/user-data && /run/user-data
  fi
else
  echo "nuage-vm: no network device"
fi
while true; do sleep 3600; done
"#;

/// udhcpc's hook: the lease's address, router and DNS servers applied.
const UDHCPC_SCRIPT: &str = r#"#!/bin/sh
case "$1" in
  deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    : > /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done ;;
esac
"#;

/// What busybox `acpid` runs on the power button (`PWRF/00000080`).
const POWER_BUTTON: &str =
    "#!/bin/sh\necho \"nuage-vm: power button, powering off\"\nsync\npoweroff -f\n";

/// Writes the busybox guest's initramfs to `out`.
pub fn busybox_initramfs(kernel: &Kernel, busybox: &Path, out: &Path) -> DriverResult<()> {
    let file = std::fs::File::create(out)
        .map_err(|e| DriverError::failed(format!("cannot create {}", out.display()), e))?;
    let mut a = Initramfs::new(std::io::BufWriter::new(file));
    for d in [
        "bin",
        "etc",
        "etc/acpi",
        "etc/acpi/PWRF",
        "lib",
        "lib/modules",
    ] {
        a.dir(d)?;
    }
    a.copy("bin/busybox", busybox)?;
    a.file("init", 0o755, INIT.as_bytes())?;
    a.file("etc/udhcpc.script", 0o755, UDHCPC_SCRIPT.as_bytes())?;
    a.file("etc/acpi/PWRF/00000080", 0o755, POWER_BUTTON.as_bytes())?;
    let mut order = String::new();
    for m in &kernel.modules {
        let name = m
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| DriverError::Invalid(format!("module {}", m.display())))?;
        a.copy(&format!("lib/modules/{name}"), m)?;
        order.push_str(name);
        order.push('\n');
    }
    a.file("lib/modules/order", 0o644, order.as_bytes())?;
    a.finish()?;
    Ok(())
}
