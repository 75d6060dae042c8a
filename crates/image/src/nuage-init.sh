#!/bin/sh
# nuage-init: PID 1 of nuage's built-in images, a tiny cloud-init.
#
# Reads the config drive the container driver mounts read-only at
# /mnt/config (OpenStack's layout: openstack/latest/meta_data.json and
# user_data, plus nuage/instance-id), runs a user-data script (#!) once per
# instance, as cloud-init does, then idles as PID 1: one shell and one sleep.
# SIGTERM (a stop) ends it with status 0. POSIX sh: runs under dash and
# busybox sh. Its stdout and stderr are the instance's console.

PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
umask 022
cd / || exit 1

config=/mnt/config
child=

# The shell opens /dev/null for every background job; the runtime mounts
# /dev, a bare chroot may lack it. Without it, run in the foreground.
if [ ! -c /dev/null ]; then
	mknod -m 666 /dev/null c 1 3 2>&- || :
fi
bg=
if [ -c /dev/null ]; then
	bg=1
else
	echo "nuage-init: no /dev/null, stops may wait a second" >&2
fi

stop() {
	# PID 1 gets no default signal handling: without this trap a stop
	# would wait for SIGKILL.
	if [ -n "$child" ]; then
		kill "$child" 2>/dev/null
	fi
	echo "nuage-init: stopping"
	exit 0
}
trap stop TERM INT

id=
if [ -r "$config/nuage/instance-id" ]; then
	IFS= read -r id <"$config/nuage/instance-id" || :
fi
case $id in
'' | . | .. | */*) id=unknown ;;
esac

echo "nuage-init: instance $id booting"

state=/var/lib/cloud/instances/$id
user_data=$config/openstack/latest/user_data
if [ -f "$user_data" ] && [ ! -e "$state/boot-finished" ]; then
	first=
	IFS= read -r first <"$user_data" || :
	case $first in
	'#!'*)
		if mkdir -p "$state" && cp "$user_data" "$state/user-data" &&
			chmod 700 "$state/user-data"; then
			echo "nuage-init: running user-data"
			if [ -n "$bg" ]; then
				# In the background so that a stop is not held up by it.
				"$state/user-data" </dev/null &
				child=$!
				wait "$child"
				status=$?
				child=
			else
				"$state/user-data"
				status=$?
			fi
			echo "nuage-init: user-data exited with status $status"
		else
			echo "nuage-init: cannot copy user-data to $state" >&2
		fi
		;;
	*)
		echo "nuage-init: user-data is not a script (no #!), not run"
		;;
	esac
	mkdir -p "$state" && date >"$state/boot-finished"
fi

echo "nuage-init: instance $id up"

if [ -n "$bg" ]; then
	while :; do
		sleep 3600 &
		child=$!
		wait "$child"
	done
fi
while :; do
	sleep 1
done
