-- Nova's flavor extras on instance types: a description (Nova 2.55), extra
-- specs (key/value pairs the scheduler and drivers may read, shown from
-- 2.61) kept as a JSON object, and private types launchable only by the
-- projects on their access list (and admins). Built-in types stay public.
ALTER TABLE instance_types ADD COLUMN description TEXT;
ALTER TABLE instance_types ADD COLUMN is_public BIGINT NOT NULL DEFAULT 1;
ALTER TABLE instance_types ADD COLUMN extra_specs TEXT NOT NULL DEFAULT '{}';

CREATE TABLE instance_type_access (
    type_name TEXT NOT NULL REFERENCES instance_types (name) ON DELETE CASCADE,
    project_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (type_name, project_id)
);
CREATE INDEX instance_type_access_project ON instance_type_access (project_id);

-- Who made a placement group (Nova's server group user_id); NULL for
-- groups made before.
ALTER TABLE placement_groups ADD COLUMN user_id TEXT
