-- EC2's MetadataOptions.HttpTokens: 'required' makes the instance metadata
-- service answer only requests that carry an IMDSv2 session token.
ALTER TABLE instances ADD COLUMN http_tokens TEXT NOT NULL DEFAULT 'optional';
