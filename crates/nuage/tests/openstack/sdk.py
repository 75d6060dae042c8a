#!/usr/bin/python3
"""Drives nuage through openstacksdk (python3-openstacksdk) as a program
would: flavors, key pairs, images (create, upload, download, delete),
server groups and limits, through openstack.connect() on the admin.env
credentials. Each bad input is checked to be refused and to change nothing.

    sdk.py IMAGE_FILE

Prints "ok" last; any failed check raises (exit status 1).
"""
import hashlib
import sys

import openstack
from openstack import exceptions

image_file = sys.argv[1]
data = open(image_file, "rb").read()

conn = openstack.connect()
compute, image = conn.compute, conn.image


def refused(fn, *args, status=None, **kwargs):
    try:
        fn(*args, **kwargs)
    except exceptions.HttpException as e:
        if status is not None and e.status_code != status:
            raise AssertionError(f"{fn.__name__}: {e.status_code} not {status}: {e}")
        return e
    raise AssertionError(f"{fn.__name__}{args} was not refused")


# Flavors: listed, made private with extra specs and access, deleted.
names = {f.name for f in compute.flavors()}
assert {"m1.tiny", "t2.nano"} <= names, names
f = compute.create_flavor(name="sdk.flavor", ram=96, vcpus=1, disk=1, is_public=False)
assert f.id == "sdk.flavor" and not f.is_public, f
compute.create_flavor_extra_specs(f, {"hw:mem_page_size": "small"})
assert compute.fetch_flavor_extra_specs(f).extra_specs == {"hw:mem_page_size": "small"}
project = conn.identity.find_project("admin")
compute.flavor_add_tenant_access(f, project.id)
access = compute.get_flavor_access(f)
assert [a["tenant_id"] for a in access] == [project.id], access
refused(compute.create_flavor, name="sdk.flavor", ram=96, vcpus=1, disk=1, status=409)
refused(compute.create_flavor, name="sdk.bad", ram=96, vcpus=0, disk=1, status=400)
assert compute.find_flavor("sdk.bad") is None
compute.delete_flavor(f)
assert compute.find_flavor("sdk.flavor") is None

# Key pairs: generated and imported; a duplicate refused.
kp = compute.create_keypair(name="sdk-key")
assert "PRIVATE KEY" in kp.private_key
refused(compute.create_keypair, name="sdk-key", status=409)
assert [k.name for k in compute.keypairs()] == ["sdk-key"]
compute.delete_keypair("sdk-key")
assert list(compute.keypairs()) == []

# Images: created, uploaded, checked, downloaded, tagged, deleted.
img = conn.create_image(
    "sdk-image", filename=image_file, disk_format="raw",
    container_format="bare", wait=True, tags=["sdk"],
)
got = image.get_image(img.id)
assert got.status == "active", got
assert got.checksum == hashlib.md5(data).hexdigest(), got
assert got.hash_algo == "sha512", got
assert got.hash_value == hashlib.sha512(data).hexdigest(), got
assert "sdk" in got.tags, got.tags
down = image.download_image(got)
assert down.content == data
assert [i.name for i in image.images(tag="sdk")] == ["sdk-image"]
image.deactivate_image(got)
assert image.get_image(got).status == "deactivated"
image.reactivate_image(got)
refused(image.create_image, name="sdk-bad", disk_format="qcow9", container_format="bare", status=400)
assert [i.name for i in image.images(name="sdk-bad")] == []
image.delete_image(got)
assert image.find_image("sdk-image") is None

# Server groups.
g = compute.create_server_group(name="sdk-group", policies=["anti-affinity"])
assert g.policy == "anti-affinity" and g.rules == {}, g  # 2.64 shapes
assert compute.get_server_group(g.id).name == "sdk-group"
refused(compute.create_server_group, name="sdk-soft", policies=["soft-affinity"], status=400)
assert [x.name for x in compute.server_groups()] == ["sdk-group"]
assert compute.get_limits().absolute.server_groups_used == 1
compute.delete_server_group(g)
assert list(compute.server_groups()) == []

# Limits.
limits = compute.get_limits()
assert limits.absolute.instances > 0, limits.absolute
assert limits.absolute.server_groups == 10, limits.absolute
assert limits.absolute.server_groups_used == 0, limits.absolute

print("ok")
