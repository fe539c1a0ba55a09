-- Cross-signing (storage/crosssigning.go): each user's master,
-- self-signing and user-signing public keys, and the signatures users
-- upload for devices and keys (spec: "Cross-signing").
--
-- cross_signing_keys holds the CrossSigningKey objects as uploaded
-- (canonical JSON), one per user and usage.
CREATE TABLE cross_signing_keys (
    user_id  TEXT NOT NULL,
    usage    TEXT NOT NULL,
    key_json TEXT NOT NULL,
    PRIMARY KEY (user_id, usage)
);

-- key_signatures holds signatures uploaded with /keys/signatures/upload:
-- signer_key_id (e.g. "ed25519:<public key>" or "ed25519:<device ID>") of
-- signer_user_id signed target_key_id of target_user_id (a device ID, or
-- a cross-signing public key). They are merged into /keys/query answers.
CREATE TABLE key_signatures (
    signer_user_id TEXT NOT NULL,
    signer_key_id  TEXT NOT NULL,
    target_user_id TEXT NOT NULL,
    target_key_id  TEXT NOT NULL,
    signature      TEXT NOT NULL,
    PRIMARY KEY (target_user_id, target_key_id, signer_user_id, signer_key_id)
);
