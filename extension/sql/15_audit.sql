--------------------------------------------------------------------------
-- The audit trail (audit.c)
--
-- One hash chain per company (the chain is the company id) and one system
-- chain (the nil uuid).  Entries are appended by a C trigger that numbers
-- them without gaps and links each to its predecessor:
--
--   hash = sha256(prev_hash || canonical bytes of the entry)
--
-- The canonical encoding uses only built-in functions, so an auditor can
-- recompute every hash in plain SQL (see actloom.audit_canonical and the
-- README).  The trail is append-only for every role, owner included.
--------------------------------------------------------------------------

CREATE FUNCTION actloom.system_chain()
RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN '00000000-0000-0000-0000-000000000000'::uuid;
COMMENT ON FUNCTION actloom.system_chain() IS
	'the chain of entries that belong to no company: the nil uuid';

CREATE FUNCTION actloom.audit_genesis()
RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
COMMENT ON FUNCTION actloom.audit_genesis() IS
	'the previous hash of the first entry of every chain: 32 zero bytes';

CREATE TABLE actloom.audit_log (
	chain		  uuid NOT NULL,
	seq			  bigint NOT NULL,
	at			  timestamptz NOT NULL,
	actor_user	  uuid,
	actor_api_key uuid,
	actor_session uuid,
	client_addr	  inet,
	action		  text NOT NULL,
	target_type	  text,
	target_id	  text,
	detail		  jsonb NOT NULL,
	prev_hash	  bytea NOT NULL,
	hash		  bytea NOT NULL,
	PRIMARY KEY (chain, seq)
);
COMMENT ON TABLE actloom.audit_log IS
	'the hash-chained audit trail; append-only, one chain per company plus the system chain';

CREATE TABLE actloom.audit_checkpoints (
	chain		uuid NOT NULL,
	seq			bigint NOT NULL,
	hash		bytea NOT NULL,
	at			timestamptz NOT NULL,
	signature	bytea NOT NULL,
	public_key	bytea NOT NULL,
	PRIMARY KEY (chain, at, seq)
);
COMMENT ON TABLE actloom.audit_checkpoints IS
	'signed chain heads; an auditor keeps copies elsewhere to detect truncation and rewrites';

SELECT pg_catalog.pg_extension_config_dump('actloom.audit_log', '');
SELECT pg_catalog.pg_extension_config_dump('actloom.audit_checkpoints', '');

CREATE FUNCTION actloom.audit_append()
RETURNS trigger
AS 'MODULE_PATHNAME', 'audit_append'
LANGUAGE C;
COMMENT ON FUNCTION actloom.audit_append() IS
	'trigger: number, time-stamp, attribute and chain a new audit entry';

CREATE FUNCTION actloom.audit_refuse_change()
RETURNS trigger
AS 'MODULE_PATHNAME', 'audit_refuse_change'
LANGUAGE C;
COMMENT ON FUNCTION actloom.audit_refuse_change() IS
	'trigger: refuse UPDATE, DELETE and TRUNCATE of the audit trail';

CREATE TRIGGER audit_append BEFORE INSERT ON actloom.audit_log
	FOR EACH ROW EXECUTE FUNCTION actloom.audit_append();
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON actloom.audit_log
	FOR EACH ROW EXECUTE FUNCTION actloom.audit_refuse_change();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON actloom.audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION actloom.audit_refuse_change();
CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON actloom.audit_checkpoints
	FOR EACH ROW EXECUTE FUNCTION actloom.audit_refuse_change();
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON actloom.audit_checkpoints
	FOR EACH STATEMENT EXECUTE FUNCTION actloom.audit_refuse_change();
-- Fire in replica mode too: session_replication_role does not switch them off.
ALTER TABLE actloom.audit_log ENABLE ALWAYS TRIGGER audit_append;
ALTER TABLE actloom.audit_log ENABLE ALWAYS TRIGGER audit_append_only;
ALTER TABLE actloom.audit_log ENABLE ALWAYS TRIGGER audit_no_truncate;
ALTER TABLE actloom.audit_checkpoints ENABLE ALWAYS TRIGGER checkpoints_append_only;
ALTER TABLE actloom.audit_checkpoints ENABLE ALWAYS TRIGGER checkpoints_no_truncate;

REVOKE ALL ON actloom.audit_log, actloom.audit_checkpoints FROM PUBLIC;
GRANT SELECT ON actloom.audit_log, actloom.audit_checkpoints TO actloom_auditor;

-- The canonical bytes of an entry, for auditors: built from built-in
-- functions only, independent of every session setting.  Each field is
-- length-prefixed (int4, big-endian; -1 for NULL), after a 2-byte format
-- version.  The C trigger produces the same bytes.
CREATE FUNCTION actloom.audit_canonical(e actloom.audit_log)
RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN int2send(1::int2)
	|| coalesce(int4send(length(uuid_send(e.chain))) || uuid_send(e.chain), int4send(-1))
	|| coalesce(int4send(length(int8send(e.seq))) || int8send(e.seq), int4send(-1))
	|| coalesce(int4send(length(timestamptz_send(e.at))) || timestamptz_send(e.at), int4send(-1))
	|| coalesce(int4send(length(uuid_send(e.actor_user))) || uuid_send(e.actor_user), int4send(-1))
	|| coalesce(int4send(length(uuid_send(e.actor_api_key))) || uuid_send(e.actor_api_key), int4send(-1))
	|| coalesce(int4send(length(uuid_send(e.actor_session))) || uuid_send(e.actor_session), int4send(-1))
	|| coalesce(int4send(length(inet_send(e.client_addr))) || inet_send(e.client_addr), int4send(-1))
	|| coalesce(int4send(length(convert_to(e.action, 'UTF8'))) || convert_to(e.action, 'UTF8'), int4send(-1))
	|| coalesce(int4send(length(convert_to(e.target_type, 'UTF8'))) || convert_to(e.target_type, 'UTF8'), int4send(-1))
	|| coalesce(int4send(length(convert_to(e.target_id, 'UTF8'))) || convert_to(e.target_id, 'UTF8'), int4send(-1))
	|| coalesce(int4send(length(convert_to(e.detail::text, 'UTF8'))) || convert_to(e.detail::text, 'UTF8'), int4send(-1));
COMMENT ON FUNCTION actloom.audit_canonical(actloom.audit_log) IS
	'the canonical bytes of an audit entry, in plain SQL (format version 1)';

-- Append to a chain with the current actor.  Internal: the extension's own
-- functions call it; applications call actloom.audit().  The trigger
-- validates the entry: an action like "reports.generate" (at most 100
-- characters), a target type of at most 100 and an id of at most 200
-- characters, a detail that is a JSON object of at most 16384 bytes as text.
CREATE FUNCTION actloom._audit_to(chain uuid, action text, target_type text,
								  target_id text, detail jsonb)
RETURNS bigint
AS 'MODULE_PATHNAME', 'audit_to'
LANGUAGE C VOLATILE PARALLEL RESTRICTED
SET search_path = pg_catalog, actloom, pg_temp;
COMMENT ON FUNCTION actloom._audit_to(uuid, text, text, text, jsonb) IS
	'internal: append an entry to a chain with the current actor';

CREATE FUNCTION actloom.audit(action text, target_type text DEFAULT NULL,
							  target_id text DEFAULT NULL, detail jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE sql VOLATILE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
RETURN actloom._audit_to(coalesce(actloom.current_company(), actloom.system_chain()),
						 action, target_type, target_id, detail);
COMMENT ON FUNCTION actloom.audit(text, text, text, jsonb) IS
	'append to the acting company''s chain (the system chain when no company acts); returns the sequence number';

CREATE FUNCTION actloom.set_client_addr(addr inet)
RETURNS void
AS 'MODULE_PATHNAME', 'set_client_addr'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION actloom.set_client_addr(inet) IS
	'record the end client''s address for this transaction''s audit entries; gateway only';

CREATE FUNCTION actloom.audit_verify(chain uuid DEFAULT NULL)
RETURNS TABLE (chain uuid, entries bigint, ok boolean, first_bad_seq bigint, reason text)
AS 'MODULE_PATHNAME', 'audit_verify'
LANGUAGE C STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp;
COMMENT ON FUNCTION actloom.audit_verify(uuid) IS
	'verify one chain, or all: entries, verdict, first bad sequence number and why';

CREATE FUNCTION actloom.audit_checkpoint(chain uuid)
RETURNS TABLE (chain uuid, seq bigint, hash bytea, at timestamptz, signature bytea)
AS 'MODULE_PATHNAME', 'audit_checkpoint'
LANGUAGE C VOLATILE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp;
COMMENT ON FUNCTION actloom.audit_checkpoint(uuid) IS
	'sign and record the head of a chain with the Ed25519 audit signing key';

CREATE FUNCTION actloom.audit_checkpoint_message(chain uuid, seq bigint, hash bytea, at timestamptz)
RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN convert_to('actloom-audit-checkpoint-v1', 'UTF8') || uuid_send(chain) || int8send(seq)
	|| hash || timestamptz_send(at);
COMMENT ON FUNCTION actloom.audit_checkpoint_message(uuid, bigint, bytea, timestamptz) IS
	'the bytes a checkpoint signature covers';

CREATE FUNCTION actloom.audit_public_key()
RETURNS text
AS 'MODULE_PATHNAME', 'audit_public_key'
LANGUAGE C STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp;
COMMENT ON FUNCTION actloom.audit_public_key() IS
	'the public key of the audit signing key, as PEM';

-- Company members with audit.read reach their own chain through these.
CREATE FUNCTION actloom.company_audit(company uuid, after_seq bigint DEFAULT 0,
									  max_entries integer DEFAULT 100)
RETURNS SETOF actloom.audit_log
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
BEGIN
	PERFORM actloom._require_arg(company, 'company');
	PERFORM actloom.authorize(company, 'audit.read');
	PERFORM actloom._require_arg(max_entries, 'max_entries');
	IF max_entries NOT BETWEEN 1 AND 1000 THEN
		RAISE EXCEPTION 'max_entries must be between 1 and 1000'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN QUERY
		SELECT * FROM actloom.audit_log a
		 WHERE a.chain = company AND a.seq > coalesce(after_seq, 0)
		 ORDER BY a.seq LIMIT max_entries;
END
$$;
COMMENT ON FUNCTION actloom.company_audit(uuid, bigint, integer) IS
	'the company''s chain after a sequence number, oldest first (permission audit.read)';

CREATE FUNCTION actloom.company_audit_verify(company uuid)
RETURNS TABLE (chain uuid, entries bigint, ok boolean, first_bad_seq bigint, reason text)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
BEGIN
	PERFORM actloom._require_arg(company, 'company');
	PERFORM actloom.authorize(company, 'audit.read');
	RETURN QUERY SELECT * FROM actloom.audit_verify(company);
END
$$;
COMMENT ON FUNCTION actloom.company_audit_verify(uuid) IS
	'verify the company''s chain (permission audit.read)';

CREATE FUNCTION actloom.company_audit_checkpoint(company uuid)
RETURNS TABLE (chain uuid, seq bigint, hash bytea, at timestamptz, signature bytea)
LANGUAGE plpgsql VOLATILE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
BEGIN
	PERFORM actloom._require_arg(company, 'company');
	PERFORM actloom.authorize(company, 'audit.read');
	RETURN QUERY SELECT * FROM actloom.audit_checkpoint(company);
END
$$;
COMMENT ON FUNCTION actloom.company_audit_checkpoint(uuid) IS
	'a signed checkpoint of the company''s chain (permission audit.read)';

-- The public key is public: the gateway hands it out with each checkpoint.
GRANT EXECUTE ON FUNCTION
	actloom.audit(text, text, text, jsonb),
	actloom.set_client_addr(inet),
	actloom.company_audit(uuid, bigint, integer),
	actloom.company_audit_verify(uuid),
	actloom.company_audit_checkpoint(uuid),
	actloom.audit_public_key()
	TO actloom_gateway;
GRANT EXECUTE ON FUNCTION
	actloom.audit_verify(uuid),
	actloom.audit_checkpoint(uuid),
	actloom.audit_public_key()
	TO actloom_auditor;
