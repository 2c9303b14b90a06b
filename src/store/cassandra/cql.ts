/**
 * Every prepared statement of the Cassandra store, by name, for one keyspace (the keyspace cannot be
 * a bind marker). The tables are described in schema.ts; which consistency each statement runs at
 * is statementOptions (context.ts).
 */

export type Queries = ReturnType<typeof queries>;

export function queries(ks: string) {
  const app = 'id, tenant_id, name, app_token, credentials_service, profile_schema, created_at, write_id';
  const creds = 'app_id, credentials_id, public_key, status, endpoint_id, created_at, updated_at, write_id';
  const reg = 'app_id, credentials_id, server_profile_body, created_at, updated_at';
  const apiKey = 'id, tenant_id, secret_hash, name, created_at, write_id';
  const ep = 'app_id, key_hash, credentials_id, public_key, profile_body, profile_hash, server_profile_body, created_at, updated_at';
  const owner = 'app_id, key_hash, tenant_id, owner_external_id, attached_at, write_id';
  const current = 'app_id, key_hash, tenant_id, token_hash, expires_at, updated_at, write_id';
  const verifier = 'app_id, verifier_token, plugin_type_name, name, description, json_configuration, created_at, updated_at, write_id';
  return {
    insertTenant: `INSERT INTO ${ks}.tenants (id, name, created_at, write_id) VALUES (?, ?, ?, ?) IF NOT EXISTS`,
    selectTenant: `SELECT id, name, created_at, write_id FROM ${ks}.tenants WHERE id = ?`,
    selectTenants: `SELECT id, name, created_at FROM ${ks}.tenants`,

    insertApp: `INSERT INTO ${ks}.applications (${app}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS`,
    selectApp: `SELECT ${app} FROM ${ks}.applications WHERE id = ?`,
    claimToken: `INSERT INTO ${ks}.applications_by_token (app_token, app_id, claimed_at, write_id) VALUES (?, ?, ?, ?) IF NOT EXISTS`,
    takeOverToken: `UPDATE ${ks}.applications_by_token SET app_id = ?, claimed_at = ?, write_id = ? WHERE app_token = ? IF write_id = ?`,
    releaseToken: `DELETE FROM ${ks}.applications_by_token WHERE app_token = ? IF write_id = ?`,
    selectToken: `SELECT app_id, claimed_at, write_id FROM ${ks}.applications_by_token WHERE app_token = ?`,
    insertTenantApp: `INSERT INTO ${ks}.applications_by_tenant (tenant_id, app_id) VALUES (?, ?)`,
    selectTenantApps: `SELECT app_id FROM ${ks}.applications_by_tenant WHERE tenant_id = ?`,

    insertCreds: `INSERT INTO ${ks}.credentials (${creds}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS`,
    insertCredsRegistered: `INSERT INTO ${ks}.credentials (${creds}, server_profile_body, registered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                            IF NOT EXISTS`,
    selectCredsRegistration: `SELECT server_profile_body, registered_at FROM ${ks}.credentials WHERE app_id = ? AND credentials_id = ?`,
    selectCreds: `SELECT ${creds} FROM ${ks}.credentials WHERE app_id = ? AND credentials_id = ?`,
    bindCreds: `UPDATE ${ks}.credentials SET status = 'IN_USE', endpoint_id = ?, updated_at = ?
                WHERE app_id = ? AND credentials_id = ? IF status = 'AVAILABLE'`,
    insertCredsIndex: `INSERT INTO ${ks}.credentials_by_app (app_id, bucket, credentials_id) VALUES (?, ?, ?)`,
    selectCredsIndex: `SELECT credentials_id FROM ${ks}.credentials_by_app WHERE app_id = ? AND bucket = ? LIMIT ?`,
    selectCredsIndexAfter: `SELECT credentials_id FROM ${ks}.credentials_by_app WHERE app_id = ? AND bucket = ? AND credentials_id > ? LIMIT ?`,
    revokeCreds: `UPDATE ${ks}.credentials SET status = 'REVOKED', updated_at = ? WHERE app_id = ? AND credentials_id = ? IF status = ?`,

    upsertReg: `INSERT INTO ${ks}.registrations (${reg}) VALUES (?, ?, ?, ?, ?)`,
    selectReg: `SELECT ${reg} FROM ${ks}.registrations WHERE app_id = ? AND credentials_id = ?`,

    upsertEndpoint: `INSERT INTO ${ks}.app_endpoints (app_id, bucket, key_hash, credentials_id, public_key, profile_body, profile_hash,
                     server_profile_body, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    selectEndpoint: `SELECT ${ep} FROM ${ks}.app_endpoints WHERE app_id = ? AND bucket = ? AND key_hash = ?`,
    selectBucket: `SELECT ${ep} FROM ${ks}.app_endpoints WHERE app_id = ? AND bucket = ? LIMIT ?`,
    selectBucketAfter: `SELECT ${ep} FROM ${ks}.app_endpoints WHERE app_id = ? AND bucket = ? AND key_hash > ? LIMIT ?`,
    insertEndpointBucket: `INSERT INTO ${ks}.app_endpoint_buckets (app_id, bucket) VALUES (?, ?)`,
    selectEndpointBuckets: `SELECT bucket FROM ${ks}.app_endpoint_buckets WHERE app_id = ? AND bucket >= ?`,

    insertApiKey: `INSERT INTO ${ks}.api_keys (${apiKey}) VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS`,
    selectApiKey: `SELECT ${apiKey} FROM ${ks}.api_keys WHERE id = ?`,
    selectApiKeys: `SELECT ${apiKey} FROM ${ks}.api_keys`,
    selectApiKeyIds: `SELECT id FROM ${ks}.api_keys`,
    deleteApiKey: `DELETE FROM ${ks}.api_keys WHERE id = ? IF write_id = ?`,
    insertScopeKey: `INSERT INTO ${ks}.api_keys_by_tenant (scope, key_id) VALUES (?, ?)`,
    deleteScopeKey: `DELETE FROM ${ks}.api_keys_by_tenant WHERE scope = ? AND key_id = ?`,
    selectScopeKeys: `SELECT key_id FROM ${ks}.api_keys_by_tenant WHERE scope = ?`,

    selectOwner: `SELECT ${owner} FROM ${ks}.endpoint_owner WHERE app_id = ? AND key_hash = ?`,
    insertOwner: `INSERT INTO ${ks}.endpoint_owner (${owner}) VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS`,
    moveOwner: `UPDATE ${ks}.endpoint_owner SET tenant_id = ?, owner_external_id = ?, attached_at = ?, write_id = ?
                WHERE app_id = ? AND key_hash = ? IF write_id = ?`,
    deleteOwner: `DELETE FROM ${ks}.endpoint_owner WHERE app_id = ? AND key_hash = ? IF write_id = ?`,
    insertOwnerEndpoint: `INSERT INTO ${ks}.owner_endpoints (tenant_id, owner_external_id, app_id, key_hash) VALUES (?, ?, ?, ?)`,
    deleteOwnerEndpoint: `DELETE FROM ${ks}.owner_endpoints WHERE tenant_id = ? AND owner_external_id = ? AND app_id = ? AND key_hash = ?`,
    upsertEventClasses: `INSERT INTO ${ks}.event_classes (app_id, key_hash, classes) VALUES (?, ?, ?)`,
    selectEventClasses: `SELECT classes FROM ${ks}.event_classes WHERE app_id = ? AND key_hash = ?`,
    selectOwnerEndpoints: `SELECT app_id, key_hash FROM ${ks}.owner_endpoints WHERE tenant_id = ? AND owner_external_id = ?`,

    selectTokenIdx: `SELECT app_id, key_hash, expires_at, write_id FROM ${ks}.endpoint_tokens WHERE tenant_id = ? AND token_hash = ?`,
    claimTokenIdx: `INSERT INTO ${ks}.endpoint_tokens (tenant_id, token_hash, app_id, key_hash, expires_at, write_id)
                    VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS`,
    refreshTokenIdx: `UPDATE ${ks}.endpoint_tokens SET expires_at = ? WHERE tenant_id = ? AND token_hash = ? IF write_id = ?`,
    takeTokenIdx: `UPDATE ${ks}.endpoint_tokens SET app_id = ?, key_hash = ?, expires_at = ?, write_id = ?
                   WHERE tenant_id = ? AND token_hash = ? IF write_id = ?`,
    releaseTokenIdx: `DELETE FROM ${ks}.endpoint_tokens WHERE tenant_id = ? AND token_hash = ? IF write_id = ?`,
    selectTokenCurrent: `SELECT ${current} FROM ${ks}.endpoint_token_current WHERE app_id = ? AND key_hash = ?`,
    insertTokenCurrent: `INSERT INTO ${ks}.endpoint_token_current (${current}) VALUES (?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS`,
    updateTokenCurrent: `UPDATE ${ks}.endpoint_token_current SET tenant_id = ?, token_hash = ?, expires_at = ?, updated_at = ?, write_id = ?
                         WHERE app_id = ? AND key_hash = ? IF write_id = ?`,

    insertVerifier: `INSERT INTO ${ks}.verifiers (${verifier}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS`,
    selectVerifier: `SELECT ${verifier}, default_token FROM ${ks}.verifiers WHERE app_id = ? AND verifier_token = ?`,
    selectVerifiers: `SELECT ${verifier} FROM ${ks}.verifiers WHERE app_id = ?`,
    updateVerifier: `UPDATE ${ks}.verifiers SET plugin_type_name = ?, name = ?, description = ?, json_configuration = ?, updated_at = ?,
                     write_id = ? WHERE app_id = ? AND verifier_token = ? IF write_id = ?`,
    deleteVerifier: `DELETE FROM ${ks}.verifiers WHERE app_id = ? AND verifier_token = ? IF write_id = ?`,
    selectDefaultVerifier: `SELECT default_token FROM ${ks}.verifiers WHERE app_id = ? LIMIT 1`,
    // Sets a regular column too (write_id): an UPDATE naming the clustering key may not set only
    // static columns.
    setDefaultVerifier: `UPDATE ${ks}.verifiers SET default_token = ?, write_id = ? WHERE app_id = ? AND verifier_token = ? IF write_id = ?`,
    clearDefaultVerifier: `UPDATE ${ks}.verifiers SET default_token = null WHERE app_id = ? IF default_token = ?`,

    // The head row (seq = HEAD_ROW, notifications.ts) holds last_seq and head_seq; notification rows hold the rest.
    selectQueueHead: `SELECT last_seq, head_seq FROM ${ks}.notification_queue WHERE app_id = ? AND key_hash = ? AND seq = ?`,
    insertQueueHead: `INSERT INTO ${ks}.notification_queue (app_id, key_hash, seq, last_seq, head_seq) VALUES (?, ?, ?, ?, ?) IF NOT EXISTS`,
    advanceQueueHead: `UPDATE ${ks}.notification_queue SET last_seq = ?, head_seq = ? WHERE app_id = ? AND key_hash = ? AND seq = ?
                       IF last_seq = ? AND head_seq = ?`,
    moveQueueHead: `UPDATE ${ks}.notification_queue SET head_seq = ? WHERE app_id = ? AND key_hash = ? AND seq = ? IF head_seq = ?`,
    insertQueued: `INSERT INTO ${ks}.notification_queue (app_id, key_hash, seq, payload, created_at, write_id) VALUES (?, ?, ?, ?, ?, ?)`,
    deleteQueued: `DELETE FROM ${ks}.notification_queue WHERE app_id = ? AND key_hash = ? AND seq = ?`,
    deleteQueuedIfExists: `DELETE FROM ${ks}.notification_queue WHERE app_id = ? AND key_hash = ? AND seq = ? IF EXISTS`,
    selectQueuedWriteId: `SELECT write_id FROM ${ks}.notification_queue WHERE app_id = ? AND key_hash = ? AND seq = ?`,
    selectQueued: `SELECT seq, payload, created_at FROM ${ks}.notification_queue WHERE app_id = ? AND key_hash = ? AND seq > ? LIMIT ?`,
    selectQueuedSeqsBetween: `SELECT seq FROM ${ks}.notification_queue WHERE app_id = ? AND key_hash = ? AND seq > ? AND seq <= ?`,

    // TTL 0 is no TTL (a permanent ban).
    upsertBan: `INSERT INTO ${ks}.bans (bucket, kind, ban_value, reason, created_at, expires_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)
                USING TTL ?`,
    selectBan: `SELECT kind FROM ${ks}.bans WHERE bucket = ? AND kind = ? AND ban_value = ?`,
    deleteBan: `DELETE FROM ${ks}.bans WHERE bucket = ? AND kind = ? AND ban_value = ?`,
    selectBans: `SELECT kind, ban_value, reason, created_at, expires_at, created_by FROM ${ks}.bans WHERE bucket = ?`,
    insertControl: `INSERT INTO ${ks}.control_log (bucket, at, id, type, app_id, key_hash) VALUES (?, ?, ?, ?, ?, ?) USING TTL ?`,
    selectControl: `SELECT at, id, type, app_id, key_hash FROM ${ks}.control_log WHERE bucket = ? AND at >= ? LIMIT ?`,
  };
}
