#!/usr/bin/python3
"""The openstacksdk steps of the end-to-end OpenStack scenario
(tests/openstack_scenario.rs):

    scenario.py check NET_ID SERVER_1 SERVER_2 SERVER_3
        reads the scenario's servers, network, subnet, ports, security
        group, floating IP, image, key pair and flavors through
        openstacksdk's proxies; stops and starts SERVER_2 with the SDK's
        waits; creates, waits for and deletes a server of its own

Credentials come from the environment (admin.env's OS_* variables). Any
failed check raises, so the process exits non-zero with the reason.
"""
import sys

import openstack

step, args = sys.argv[1], sys.argv[2:]
conn = openstack.connect()

if step == "check":
    net_id, s1, s2, s3 = args
    servers = {s.id: s for s in conn.compute.servers(details=True)}
    assert {s1, s2, s3} <= set(servers), sorted(servers)
    for sid in (s1, s2, s3):
        assert servers[sid].status == "ACTIVE", servers[sid]
    one = conn.compute.get_server(s1)
    assert one.name == "os-web-1", one
    assert "os-net" in one.addresses, one.addresses
    kinds = {a["OS-EXT-IPS:type"] for a in one.addresses["os-net"]}
    assert kinds == {"fixed", "floating"}, one.addresses
    fixed = [a["addr"] for a in one.addresses["os-net"] if a["OS-EXT-IPS:type"] == "fixed"]

    net = conn.network.get_network(net_id)
    assert net.name == "os-net", net
    subnets = list(conn.network.subnets(network_id=net_id))
    assert [s.cidr for s in subnets] == ["10.42.0.0/24"], subnets
    ports = list(conn.network.ports(device_id=s1))
    assert len(ports) == 1, ports
    assert ports[0].fixed_ips[0]["ip_address"] == fixed[0], (ports, fixed)
    sg = conn.network.find_security_group("os-sg")
    assert sg is not None
    assert sg.id in ports[0].security_group_ids, (sg, ports[0])
    rules = list(conn.network.security_group_rules(security_group_id=sg.id, direction="ingress"))
    assert sorted(r.protocol for r in rules) == ["icmp", "tcp"], rules
    fips = [f for f in conn.network.ips() if f.port_id == ports[0].id]
    assert len(fips) == 1, list(conn.network.ips())

    img = conn.image.find_image("os-img")
    assert img is not None and img.status == "active", img
    assert conn.compute.find_keypair("os-key") is not None
    flavors = {f.name for f in conn.compute.flavors()}
    assert "t2.nano" in flavors, flavors

    two = conn.compute.get_server(s2)
    conn.compute.stop_server(two)
    conn.compute.wait_for_server(two, status="SHUTOFF", interval=1, wait=120)
    conn.compute.start_server(two)
    conn.compute.wait_for_server(two, status="ACTIVE", interval=1, wait=120)

    flavor = conn.compute.find_flavor("t2.nano")
    mine = conn.compute.create_server(name="os-sdk", image_id=img.id, flavor_id=flavor.id,
                                      networks=[{"uuid": net_id}])
    mine = conn.compute.wait_for_server(mine, status="ACTIVE", interval=1, wait=120)
    assert mine.addresses["os-net"][0]["addr"].startswith("10.42.0."), mine.addresses
    conn.compute.delete_server(mine)
    conn.compute.wait_for_delete(mine, interval=1, wait=120)
    print("sdk ok")
else:
    sys.exit(f"unknown step {step}")
