-- Glance's image extras: tags (a JSON list of strings), and the MD5
-- (Glance's `checksum`) and SHA-512 (`os_hash_value`) of the uploaded data,
-- computed while it streams in. NULL for data uploaded before, whose
-- SHA-256 (the blob's name) remains. Visibility `community` and status
-- `deactivated` are new values of existing columns.
ALTER TABLE images ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE images ADD COLUMN md5 TEXT;
ALTER TABLE images ADD COLUMN sha512 TEXT
