-- Tags (EC2's key/value pairs) on the network service's resources:
-- networks, subnets, security groups, floating IPs, routers and ports. One
-- table for all of them, keyed by the resource's id (ids are unique across
-- kinds by their prefixes); the project is kept so a project's tags are
-- read in one query. A resource's tags go with it.
CREATE TABLE network_tags (
    resource_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    tag_key TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (resource_id, tag_key)
);
CREATE INDEX network_tags_project ON network_tags (project_id);

-- A network's address range (EC2's VPC CidrBlock): its subnets must lie
-- inside it. NULL for networks made before, or without one.
ALTER TABLE networks ADD COLUMN cidr TEXT;
