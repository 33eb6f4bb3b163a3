--------------------------------------------------------------------------
-- Privileges.  This file runs last: EXECUTE on every function of the schema
-- is revoked from PUBLIC here, after the feature files granted what their
-- roles need; the few functions PUBLIC needs are granted back below.
--------------------------------------------------------------------------
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA actloom FROM PUBLIC;

-- Read the context: needed by row level security policies for every role.
GRANT EXECUTE ON FUNCTION actloom.current_user_id(), actloom.current_company(),
	actloom.current_api_key(), actloom.current_actor_kind(),
	actloom.current_session()
	TO PUBLIC;

-- Harmless helpers: the trigger that protect_table puts on tables (CREATE
-- TRIGGER needs EXECUTE on it), the address check, the NULL-argument check.
GRANT EXECUTE ON FUNCTION
	actloom.refuse_tenant_move(),
	actloom.valid_email(text),
	actloom._require_arg(anyelement, text)
	TO PUBLIC;

-- The pieces of the audit chain's definition, for anyone who verifies it.
GRANT EXECUTE ON FUNCTION
	actloom.system_chain(),
	actloom.schema_chain(),
	actloom.audit_genesis(),
	actloom.audit_canonical(actloom.audit_log),
	actloom.audit_checkpoint_message(uuid, bigint, bytea, timestamptz)
	TO PUBLIC;

-- Signing a message under a secret one holds reveals nothing stored.
GRANT EXECUTE ON FUNCTION actloom.webhook_signature(text, text, bigint, text) TO PUBLIC;
