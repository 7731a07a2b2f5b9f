-- incidents_append_repeats: ingest's fast path for repeats (apps/incidents/ingest.py,
-- _append_repeats; docs/adr/0008).  Migrations incidents 0013 and 0014 (Alert.route) create it from this
-- file; a change to it needs a migration that runs this file again (CREATE OR REPLACE).
-- tests/test_append_repeats.py checks it against the Python path: the alert columns
-- (ingest._ALERT_COLUMNS) and the routing of keys (dedup.open_routes).
--
-- The storm's common case in one call: every alert of the request fires again a key
-- that routes to an open incident (apps/incidents/ingest.py, _append_repeats).  A
-- function rather than a statement because it must take the keys' advisory locks
-- before it reads the routes (a statement reads with the snapshot it started with),
-- and because one call needs no BEGIN and COMMIT of its own: one round trip in
-- autocommit instead of four (docs/adr/0008).
--
-- Returns the stored alerts (id, incident, incident number) in the order sent, or no
-- rows, having written nothing, when a key routes nowhere or one of the incidents was
-- resolved before it could be locked: the caller then takes the general path.
--
-- The incidents are locked before anything is written, so that nothing needs undoing;
-- `locked` re-reads each locked row (READ COMMITTED), so an incident resolved by a
-- responder meanwhile is seen resolved.  p_alerts holds each alert's columns as a
-- JSON object (ingest._alert_row).
CREATE OR REPLACE FUNCTION incidents_append_repeats(
    p_lock_ids bigint[], p_service bigint, p_keys text[], p_alerts jsonb, p_at timestamptz
) RETURNS TABLE (alert_id bigint, incident_id bigint, incident_number bigint)
LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
BEGIN
    -- Shared: appends do not wait for one another, only for whoever adds or moves
    -- keys (they take these locks exclusively, in the same ascending order).
    PERFORM count(pg_advisory_xact_lock_shared(id)) FROM unnest(p_lock_ids) AS id;
    RETURN QUERY
    WITH route AS (
        SELECT DISTINCT ON (k.key) k.id AS key_id, k.key, k.firing, i.id AS incident_id
          FROM incidents_incidentkey k JOIN incidents_incident i ON i.id = k.incident_id
         WHERE k.service_id = p_service AND k.key = ANY(p_keys) AND k.kind <> 'apart'
           AND i.status <> 'resolved'
         ORDER BY k.key, i.id DESC
    ), locked AS (
        SELECT id FROM incidents_incident
         WHERE id IN (SELECT incident_id FROM route) AND status <> 'resolved'
         ORDER BY id FOR NO KEY UPDATE
    ), ok AS (
        SELECT (SELECT count(*) FROM route) = cardinality(p_keys)
               AND (SELECT count(*) FROM locked) = (SELECT count(DISTINCT incident_id) FROM route) AS ok
    ), refired AS (
        UPDATE incidents_incidentkey SET firing = true
         WHERE id IN (SELECT key_id FROM route WHERE NOT firing) AND (SELECT ok FROM ok)
    ), new AS (
        SELECT nextval(pg_get_serial_sequence('incidents_alert', 'id')) AS id, e.n, route.incident_id,
               r.integration_id, r.source, r.status, r.title, r.severity, r.dedup_key, r.fingerprint,
               r.group_key, r.labels, r.payload, r.deduplicated, r.dedup_reason, r.dedup_detail, r.route, r.starts_at
          FROM jsonb_array_elements(p_alerts) WITH ORDINALITY AS e(alert, n)
          JOIN route ON route.key = e.alert->>'dedup_key'
         CROSS JOIN LATERAL jsonb_populate_record(NULL::incidents_alert, e.alert) AS r
         WHERE (SELECT ok FROM ok)
    ), stored AS (
        INSERT INTO incidents_alert (
            id, received_at, incident_id, integration_id, source, status, title, severity, dedup_key,
            fingerprint, group_key, labels, payload, deduplicated, dedup_reason, dedup_detail, route, starts_at)
        SELECT id, p_at, incident_id, integration_id, source, status, title, severity, dedup_key,
               fingerprint, group_key, labels, payload, deduplicated, dedup_reason, dedup_detail, route, starts_at
          FROM new
        RETURNING incident_id
    ), counted AS (
        UPDATE incidents_incident i
           SET alert_count = i.alert_count + c.n, last_alert_at = GREATEST(i.last_alert_at, p_at), updated_at = p_at
          FROM (SELECT incident_id, count(*) AS n FROM stored GROUP BY incident_id) AS c
         WHERE i.id = c.incident_id
    )
    SELECT new.id, new.incident_id, (SELECT number FROM incidents_incident WHERE id = new.incident_id)::bigint
      FROM new ORDER BY new.n;
END
$fn$
