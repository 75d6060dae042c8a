-- Descriptions of the network service's resources (Neutron's
-- standard-attr-description; security groups had one already). Empty for
-- rows made before, as Neutron shows them.
ALTER TABLE networks ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE subnets ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE ports ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE routers ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE floating_ips ADD COLUMN description TEXT NOT NULL DEFAULT '';
