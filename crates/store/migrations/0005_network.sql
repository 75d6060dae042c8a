-- The network service (ADR 19), after Neutron and EC2's VPC: networks,
-- subnets, ports and their fixed addresses, security groups and rules,
-- routers and floating (elastic) addresses. Every row a data plane acts on
-- carries `generation` (bumped by each change the node must apply) and
-- `observed_generation` (what the node last applied), as instances do.
-- Double allocation is impossible here, whatever the service does: one
-- address per subnet (port_ips' primary key), one MAC per network, one
-- floating address per external network, one default network per project.

-- One row per project that has used the network service: the row the
-- service locks to serialise a project's default network and its
-- floating-address quota count.
CREATE TABLE network_projects (
    project_id TEXT PRIMARY KEY,
    locked_at BIGINT NOT NULL
);

CREATE TABLE networks (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    vlan_id BIGINT,
    external BIGINT NOT NULL DEFAULT 0,
    shared BIGINT NOT NULL DEFAULT 0,
    is_default BIGINT NOT NULL DEFAULT 0,
    generation BIGINT NOT NULL DEFAULT 1,
    observed_generation BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CHECK (vlan_id IS NULL OR (vlan_id >= 1 AND vlan_id <= 4094))
);
CREATE INDEX networks_project ON networks (project_id);
CREATE UNIQUE INDEX networks_default ON networks (project_id) WHERE is_default = 1;
CREATE UNIQUE INDEX networks_vlan ON networks (vlan_id) WHERE vlan_id IS NOT NULL;

-- first_address and last_address are the CIDR's range as integers, so the
-- overlap check is one indexed query. ipam_hint: every pool address below
-- it is allocated (a lower bound the allocator starts from).
CREATE TABLE subnets (
    id TEXT PRIMARY KEY,
    network_id TEXT NOT NULL REFERENCES networks (id),
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    cidr TEXT NOT NULL,
    first_address BIGINT NOT NULL,
    last_address BIGINT NOT NULL,
    gateway_ip TEXT,
    allocation_pools TEXT NOT NULL,
    dns_servers TEXT NOT NULL,
    ipam_hint BIGINT NOT NULL,
    generation BIGINT NOT NULL DEFAULT 1,
    observed_generation BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CHECK (first_address <= last_address)
);
CREATE INDEX subnets_network ON subnets (network_id, first_address);

CREATE TABLE ports (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    network_id TEXT NOT NULL REFERENCES networks (id),
    name TEXT NOT NULL,
    mac TEXT NOT NULL,
    device_owner TEXT NOT NULL,
    device_id TEXT NOT NULL,
    generation BIGINT NOT NULL DEFAULT 1,
    observed_generation BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (network_id, mac)
);
CREATE INDEX ports_project ON ports (project_id);
CREATE INDEX ports_device ON ports (device_id, device_owner);

-- A port's fixed addresses: the primary key is the IPAM's last line of
-- defence, one address of a subnet to one port.
CREATE TABLE port_ips (
    subnet_id TEXT NOT NULL REFERENCES subnets (id),
    address BIGINT NOT NULL,
    port_id TEXT NOT NULL REFERENCES ports (id) ON DELETE CASCADE,
    ip TEXT NOT NULL,
    PRIMARY KEY (subnet_id, address)
);
CREATE INDEX port_ips_port ON port_ips (port_id);

CREATE TABLE security_groups (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    generation BIGINT NOT NULL DEFAULT 1,
    observed_generation BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (project_id, name)
);

-- fingerprint: the rule's normalised content, so that a duplicate rule is
-- refused by the index (NULLs would slip through a plain UNIQUE).
CREATE TABLE security_group_rules (
    id TEXT PRIMARY KEY,
    group_id TEXT NOT NULL REFERENCES security_groups (id) ON DELETE CASCADE,
    direction TEXT NOT NULL,
    protocol TEXT NOT NULL,
    port_min BIGINT,
    port_max BIGINT,
    remote_cidr TEXT,
    remote_group_id TEXT REFERENCES security_groups (id),
    description TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (group_id, fingerprint),
    CHECK (direction IN ('ingress', 'egress')),
    CHECK (protocol IN ('tcp', 'udp', 'icmp', 'all'))
);
CREATE INDEX security_group_rules_remote ON security_group_rules (remote_group_id);

-- Membership: the group's foreign key (no cascade) refuses deleting a
-- group some port still uses.
CREATE TABLE port_security_groups (
    port_id TEXT NOT NULL REFERENCES ports (id) ON DELETE CASCADE,
    group_id TEXT NOT NULL REFERENCES security_groups (id),
    PRIMARY KEY (port_id, group_id)
);
CREATE INDEX port_security_groups_group ON port_security_groups (group_id);

-- A router's interfaces are ports (device_owner network:router_interface,
-- device_id the router) holding their subnet's gateway address; its
-- external address is the gateway port on the external network.
CREATE TABLE routers (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    external_network_id TEXT REFERENCES networks (id),
    gateway_port_id TEXT REFERENCES ports (id),
    generation BIGINT NOT NULL DEFAULT 1,
    observed_generation BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX routers_project ON routers (project_id);

-- A floating address holds a port on its external network (device_owner
-- network:floatingip), so router gateways and floating addresses share one
-- IPAM and can never collide.
CREATE TABLE floating_ips (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    network_id TEXT NOT NULL REFERENCES networks (id),
    address BIGINT NOT NULL,
    ip TEXT NOT NULL,
    address_port_id TEXT NOT NULL REFERENCES ports (id),
    port_id TEXT REFERENCES ports (id),
    fixed_ip TEXT,
    router_id TEXT REFERENCES routers (id),
    generation BIGINT NOT NULL DEFAULT 1,
    observed_generation BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (network_id, address)
);
CREATE INDEX floating_ips_project ON floating_ips (project_id);
CREATE UNIQUE INDEX floating_ips_fixed ON floating_ips (port_id, fixed_ip) WHERE port_id IS NOT NULL
