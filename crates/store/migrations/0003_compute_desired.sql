-- Desired state lives entirely in the store (ADR 0014). A forced stop is a
-- column, not the memory of the process that took the call; every instance
-- carries the generation of its spec (bumped by each change a running
-- instance must take) and the generation its node last applied, as
-- Kubernetes' metadata.generation and status.observedGeneration.
ALTER TABLE instances ADD COLUMN force_stop BIGINT NOT NULL DEFAULT 0;
ALTER TABLE instances ADD COLUMN generation BIGINT NOT NULL DEFAULT 1;
ALTER TABLE instances ADD COLUMN observed_generation BIGINT NOT NULL DEFAULT 0;
-- Running instances were started from their only spec so far.
UPDATE instances SET observed_generation = generation WHERE state = 'running';
-- One launch per client token and project: the first instance of a
-- launch holds the token, so concurrent retries cannot both insert.
DROP INDEX instances_token;
CREATE UNIQUE INDEX instances_token ON instances (project_id, client_token) WHERE launch_index = 0 AND client_token IS NOT NULL;
