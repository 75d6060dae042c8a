-- Failed logins (ADR 15), in the store so that every controller sharing it
-- counts the same failures and a restart forgives nothing. kind is 'user'
-- (a user id, or the name an unknown user was given as) or 'source' (an
-- address). A failure is one upsert that adds 1 in the database, never a
-- read-modify-write in the service. Times are Unix milliseconds;
-- locked_until is 0 until the subject is locked. expires_at is when the row
-- means nothing any more (its count forgotten and its lock over): listing
-- skips such rows and a bounded sweep deletes them, walking this index.
CREATE TABLE login_failures (
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    failures BIGINT NOT NULL,
    last_failure_at BIGINT NOT NULL,
    locked_until BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (kind, subject)
);
CREATE INDEX login_failures_expires ON login_failures (expires_at);
