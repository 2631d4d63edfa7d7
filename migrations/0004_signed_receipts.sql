-- Receipts carry an Ed25519 signature over their public JSON (see shared/signing.py).
ALTER TABLE receipts
    ADD COLUMN signature   text,   -- base64url Ed25519 signature
    ADD COLUMN signing_kid text;   -- RFC 7638 thumbprint of the key that signed it

-- Listing a tenant's receipts newest first, filtered by model.
CREATE INDEX receipts_tenant_model_created_idx ON receipts (tenant_id, model_slug, created_at);
