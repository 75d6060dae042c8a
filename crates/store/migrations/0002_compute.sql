-- Compute, after Glance, Nova and EC2: images, instance types, key pairs,
-- placement groups, compute nodes and instances. Desired state (what the user
-- asked) and observed state (what the node did) are separate columns, written
-- by the API and by the reconciler respectively, so neither overwrites the
-- other.

CREATE TABLE images (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    project_id TEXT NOT NULL,
    status TEXT NOT NULL,
    visibility TEXT NOT NULL,
    format TEXT,
    architecture TEXT,
    size BIGINT,
    sha256 TEXT,
    properties TEXT NOT NULL,
    config TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (project_id, name)
);

CREATE TABLE image_members (
    image_id TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (image_id, project_id)
);

CREATE TABLE instance_types (
    name TEXT PRIMARY KEY,
    vcpus BIGINT NOT NULL,
    memory_mib BIGINT NOT NULL,
    disk_gib BIGINT NOT NULL,
    pids_limit BIGINT NOT NULL,
    io_weight BIGINT NOT NULL,
    builtin BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE key_pairs (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    key_type TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    public_key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (project_id, name)
);

CREATE TABLE placement_groups (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    strategy TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (project_id, name)
);

CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    availability_zone TEXT NOT NULL,
    arch TEXT NOT NULL,
    hypervisor TEXT NOT NULL,
    vcpus BIGINT NOT NULL,
    ram_mib BIGINT NOT NULL,
    disk_gib BIGINT NOT NULL,
    labels TEXT NOT NULL,
    enabled BIGINT NOT NULL DEFAULT 1,
    heartbeat_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    reservation_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    image_id TEXT NOT NULL,
    instance_type TEXT NOT NULL,
    vcpus BIGINT NOT NULL,
    memory_mib BIGINT NOT NULL,
    disk_gib BIGINT NOT NULL,
    node_id TEXT NOT NULL,
    availability_zone TEXT NOT NULL,
    placement_group TEXT,
    key_name TEXT,
    user_data {blob},
    tags TEXT NOT NULL,
    hostname TEXT NOT NULL,
    launch_index BIGINT NOT NULL,
    client_token TEXT,
    desired TEXT NOT NULL,
    reboot_requested BIGINT NOT NULL DEFAULT 0,
    reboot_done BIGINT NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    state_reason TEXT,
    oom_kills BIGINT NOT NULL DEFAULT 0,
    launch_time BIGINT NOT NULL,
    terminated_at BIGINT,
    version BIGINT NOT NULL DEFAULT 1,
    updated_at BIGINT NOT NULL
);

CREATE INDEX instances_project ON instances (project_id, launch_time);
CREATE INDEX instances_node ON instances (node_id, state);
CREATE INDEX instances_image ON instances (image_id, state);
CREATE INDEX instances_token ON instances (project_id, client_token)
