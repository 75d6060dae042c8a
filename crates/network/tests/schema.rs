//! Migration 5 on both engines: the database itself refuses a double
//! allocation, whatever code writes to it (the service's checks are the
//! first line of defence, these constraints the last).

use nuage_store::testing::{fresh, ENGINES};
use nuage_store::{sqlx, Db, StoreError};

async fn exec(db: &Db, sql: &str) -> Result<(), StoreError> {
    sqlx::query(sql)
        .execute(db.writer())
        .await
        .map(|_| ())
        .map_err(|e| StoreError::unique(e, "row"))
}

fn refused_as_duplicate(r: Result<(), StoreError>, engine: &str, what: &str) {
    match r {
        Err(StoreError::AlreadyExists { .. }) => {}
        other => panic!("{engine}: {what}: expected a unique violation, got {other:?}"),
    }
}

#[tokio::test]
async fn double_allocation_is_impossible_in_the_schema() {
    for engine in ENGINES {
        let t = fresh(engine).await.expect("db");
        let db = &t.db;
        for sql in [
            "INSERT INTO networks (id, project_id, name, external, shared, is_default, created_at, updated_at) \
             VALUES ('vpc-1', 'p', 'default', 0, 0, 1, 0, 0)",
            "INSERT INTO networks (id, project_id, name, vlan_id, external, shared, is_default, created_at, updated_at) \
             VALUES ('vpc-ext', 'admin', 'public', 100, 1, 0, 0, 0, 0)",
            "INSERT INTO subnets (id, network_id, project_id, name, cidr, first_address, last_address, \
             gateway_ip, allocation_pools, dns_servers, ipam_hint, created_at, updated_at) \
             VALUES ('subnet-1', 'vpc-1', 'p', '', '10.0.0.0/24', 167772160, 167772415, '10.0.0.1', '[]', '[]', 0, 0, 0)",
            "INSERT INTO ports (id, project_id, network_id, name, mac, device_owner, device_id, created_at, updated_at) \
             VALUES ('eni-1', 'p', 'vpc-1', '', 'fa:16:3e:00:00:01', '', '', 0, 0)",
            "INSERT INTO ports (id, project_id, network_id, name, mac, device_owner, device_id, created_at, updated_at) \
             VALUES ('eni-2', 'p', 'vpc-1', '', 'fa:16:3e:00:00:02', '', '', 0, 0)",
            "INSERT INTO port_ips (subnet_id, address, port_id, ip) VALUES ('subnet-1', 167772162, 'eni-1', '10.0.0.2')",
            "INSERT INTO ports (id, project_id, network_id, name, mac, device_owner, device_id, created_at, updated_at) \
             VALUES ('eni-f', 'p', 'vpc-ext', '', 'fa:16:3e:00:00:03', '', '', 0, 0)",
            "INSERT INTO floating_ips (id, project_id, network_id, address, ip, address_port_id, created_at, updated_at) \
             VALUES ('eipalloc-1', 'p', 'vpc-ext', 3405803777, '203.0.113.1', 'eni-f', 0, 0)",
            "INSERT INTO security_groups (id, project_id, name, description, created_at, updated_at) \
             VALUES ('sg-1', 'p', 'default', '', 0, 0)",
            "INSERT INTO port_security_groups (port_id, group_id) VALUES ('eni-1', 'sg-1')",
        ] {
            exec(db, sql).await.unwrap_or_else(|e| panic!("{engine}: {sql}: {e:?}"));
        }
        let dupes = [
            ("the same address of a subnet to a second port",
             "INSERT INTO port_ips (subnet_id, address, port_id, ip) VALUES ('subnet-1', 167772162, 'eni-2', '10.0.0.2')"),
            ("the same MAC twice on a network",
             "INSERT INTO ports (id, project_id, network_id, name, mac, device_owner, device_id, created_at, updated_at) \
              VALUES ('eni-3', 'p', 'vpc-1', '', 'fa:16:3e:00:00:01', '', '', 0, 0)"),
            ("the same floating address twice",
             "INSERT INTO floating_ips (id, project_id, network_id, address, ip, address_port_id, created_at, updated_at) \
              VALUES ('eipalloc-2', 'q', 'vpc-ext', 3405803777, '203.0.113.1', 'eni-f', 0, 0)"),
            ("a second default network for a project",
             "INSERT INTO networks (id, project_id, name, external, shared, is_default, created_at, updated_at) \
              VALUES ('vpc-2', 'p', 'default', 0, 0, 1, 0, 0)"),
            ("a VLAN id on two networks",
             "INSERT INTO networks (id, project_id, name, vlan_id, external, shared, is_default, created_at, updated_at) \
              VALUES ('vpc-3', 'p', 'x', 100, 0, 0, 0, 0, 0)"),
            ("two groups of one name in a project",
             "INSERT INTO security_groups (id, project_id, name, description, created_at, updated_at) \
              VALUES ('sg-2', 'p', 'default', '', 0, 0)"),
        ];
        for (what, sql) in dupes {
            refused_as_duplicate(exec(db, sql).await, engine, what);
        }
        // The same MAC on another network, and a second non-default
        // network, are fine.
        exec(
            db,
            "INSERT INTO ports (id, project_id, network_id, name, mac, device_owner, device_id, created_at, updated_at) \
             VALUES ('eni-4', 'p', 'vpc-ext', '', 'fa:16:3e:00:00:01', '', '', 0, 0)",
        )
        .await
        .expect("same MAC, other network");
        exec(
            db,
            "INSERT INTO networks (id, project_id, name, external, shared, is_default, created_at, updated_at) \
             VALUES ('vpc-4', 'p', 'other', 0, 0, 0, 0, 0)",
        )
        .await
        .expect("a second network");
        // A group some port uses cannot be deleted, nor a subnet holding an
        // address.
        assert!(
            exec(db, "DELETE FROM security_groups WHERE id = 'sg-1'")
                .await
                .is_err(),
            "{engine}: a group in use was deleted"
        );
        assert!(
            exec(db, "DELETE FROM subnets WHERE id = 'subnet-1'")
                .await
                .is_err(),
            "{engine}: a subnet holding an address was deleted"
        );
        // A VLAN id outside 802.1Q's range.
        assert!(
            exec(
                db,
                "INSERT INTO networks (id, project_id, name, vlan_id, external, shared, is_default, created_at, updated_at) \
                 VALUES ('vpc-5', 'p', 'x', 4095, 0, 0, 0, 0, 0)",
            )
            .await
            .is_err(),
            "{engine}: VLAN 4095 accepted"
        );
    }
}
