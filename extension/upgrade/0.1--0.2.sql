\echo Use "ALTER EXTENSION actloom UPDATE TO '0.2'" to load this file. \quit
-- actloom 0.1 to 0.2.  The Makefile assembles extension/actloom--0.1--0.2.sql
-- from this file, replacing each "\ir" line with the fragment it names.
--
-- A change to an object of 0.1 is written here and, the same, in the
-- fragment of extension/sql/ that creates it for a fresh install; a fragment
-- new in 0.2 is only included.  The upgrade test (test/t/090_upgrade.pl)
-- compares an upgraded database with a fresh one and prints any drift.

-- 90_ratelimit.sql: the guards of the shared rate limiter (failed API-key
-- authentications per client address), and the checks of a take's
-- arguments, now shared by every function that takes.
-- The arguments of a take, checked once for every function that takes or
-- checks: 22004 for a NULL, 22023 for a value out of range.
CREATE FUNCTION actloom._rate_limit_args(at timestamptz, class text, key text, quota integer,
										 period integer, burst integer, cost integer)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, actloom, pg_temp
AS $$
BEGIN
	IF at IS NULL OR class IS NULL OR key IS NULL OR quota IS NULL OR period IS NULL
	   OR burst IS NULL OR cost IS NULL THEN
		RAISE EXCEPTION 'argument "%" must not be null',
			CASE WHEN at IS NULL THEN 'at' WHEN class IS NULL THEN 'class' WHEN key IS NULL THEN 'key'
				 WHEN quota IS NULL THEN 'quota' WHEN period IS NULL THEN 'period'
				 WHEN burst IS NULL THEN 'burst' ELSE 'cost' END
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF class !~ '^[a-z0-9_]{1,31}$' THEN
		RAISE EXCEPTION 'invalid rate-limit class name'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A class name is 1 to 31 characters a-z, 0-9 and _.';
	END IF;
	IF octet_length(key) NOT BETWEEN 1 AND 1024 THEN
		RAISE EXCEPTION 'a rate-limit key must be 1 to 1024 bytes long'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF quota NOT BETWEEN 1 AND 1000000000 THEN
		RAISE EXCEPTION 'quota must be between 1 and 1000000000' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF period NOT BETWEEN 1 AND 31622400 THEN
		RAISE EXCEPTION 'period must be between 1 and 31622400 seconds (366 days)'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF burst NOT BETWEEN 1 AND quota THEN
		RAISE EXCEPTION 'burst must be between 1 and quota' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF cost NOT BETWEEN 1 AND burst THEN
		RAISE EXCEPTION 'cost must be between 1 and burst'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A take costlier than the burst could never be allowed.';
	END IF;
END
$$;
COMMENT ON FUNCTION actloom._rate_limit_args(timestamptz, text, text, integer, integer, integer, integer) IS
	'internal: raises 22004 or 22023 unless the arguments describe a possible take';

CREATE OR REPLACE FUNCTION actloom._rate_limit_take_at(at timestamptz, class text, key text, quota integer,
											period integer, burst integer, cost integer,
											OUT allowed boolean, OUT remaining integer,
											OUT reset_after integer, OUT retry_after integer)
RETURNS record
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	us constant interval := interval '1 microsecond';
	t bigint;			-- the emission interval T, in microseconds
	slack bigint;		-- tau + T: how far past "now" an allowed take may leave the TAT
	step interval;		-- cost * T
	digest bytea;
	new_tat timestamptz;
	ahead bigint;		-- microseconds from "now" to the TAT
BEGIN
	PERFORM actloom._rate_limit_args(at, class, key, quota, period, burst, cost);
	t := greatest(period::bigint * 1000000 / quota, 1);
	slack := t * burst;
	step := (t * cost) * us;
	digest := sha256(convert_to(key, 'UTF8'));

	-- Allowed: insert or move the TAT.  Refused: the row is locked but not
	-- changed, and nothing is returned.
	INSERT INTO actloom.rate_limits AS r (class, key_hash, tat)
		 VALUES (_rate_limit_take_at.class, digest, at + step)
	ON CONFLICT ON CONSTRAINT rate_limits_pkey
	DO UPDATE SET tat = greatest(r.tat, at) + step
		WHERE greatest(r.tat, at) + step <= at + slack * us
	RETURNING r.tat INTO new_tat;

	IF FOUND THEN
		ahead := (extract(epoch FROM new_tat - at) * 1000000)::bigint;
		allowed := true;
		remaining := (slack - ahead) / t;
		reset_after := (ahead + 999999) / 1000000;
		retry_after := 0;
	ELSE
		-- The row this statement locked: no other take can move it now.
		SELECT greatest(r.tat, at) INTO new_tat FROM actloom.rate_limits r
		 WHERE r.class = _rate_limit_take_at.class AND r.key_hash = digest;
		ahead := (extract(epoch FROM new_tat - at) * 1000000)::bigint;
		allowed := false;
		remaining := 0;
		reset_after := (ahead + 999999) / 1000000;
		retry_after := (ahead + t * cost - slack + 999999) / 1000000;
	END IF;
END
$$;

-- A guard is a class that is checked before a request's work and charged
-- only when that work fails: the failed API-key authentications of a client
-- address, which a genuine key must not pay for, and a guesser must.  The
-- check takes nothing (_rate_limit_check_at); the charge is made whatever
-- the state (_rate_limit_charge_at), leaving a debt past the limit, so that
-- failures which all passed the check at once are all paid for, in waiting.
CREATE FUNCTION actloom._rate_limit_check_at(at timestamptz, class text, key text, quota integer,
											 period integer, burst integer,
											 OUT allowed boolean, OUT remaining integer,
											 OUT reset_after integer, OUT retry_after integer)
RETURNS record
LANGUAGE plpgsql STABLE PARALLEL UNSAFE
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	t bigint;
	slack bigint;
	tat timestamptz;
	ahead bigint := 0;
BEGIN
	PERFORM actloom._rate_limit_args(at, class, key, quota, period, burst, 1);
	t := greatest(period::bigint * 1000000 / quota, 1);
	slack := t * burst;
	SELECT r.tat INTO tat FROM actloom.rate_limits r
	 WHERE r.class = _rate_limit_check_at.class AND r.key_hash = sha256(convert_to(key, 'UTF8'));
	IF tat > at THEN
		ahead := (extract(epoch FROM tat - at) * 1000000)::bigint;
	END IF;
	allowed := ahead + t <= slack;
	remaining := greatest((slack - ahead) / t, 0);
	reset_after := (ahead + 999999) / 1000000;
	retry_after := CASE WHEN allowed THEN 0 ELSE (ahead + t - slack + 999999) / 1000000 END;
END
$$;
COMMENT ON FUNCTION actloom._rate_limit_check_at(timestamptz, text, text, integer, integer, integer) IS
	'internal: what one take at a given time would be told, taking nothing';

CREATE FUNCTION actloom._rate_limit_charge_at(at timestamptz, class text, key text, quota integer,
											  period integer, burst integer)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	step interval;
BEGIN
	PERFORM actloom._rate_limit_args(at, class, key, quota, period, burst, 1);
	step := greatest(period::bigint * 1000000 / quota, 1) * interval '1 microsecond';
	INSERT INTO actloom.rate_limits AS r (class, key_hash, tat)
		 VALUES (_rate_limit_charge_at.class, sha256(convert_to(key, 'UTF8')), at + step)
	ON CONFLICT ON CONSTRAINT rate_limits_pkey
	DO UPDATE SET tat = greatest(r.tat, at) + step;
END
$$;
COMMENT ON FUNCTION actloom._rate_limit_charge_at(timestamptz, text, text, integer, integer, integer) IS
	'internal: one take at a given time that is never refused: past the limit it leaves a debt';

-- A request with a guard: rate_limit_guard() follows rate_limit_admit() in
-- its first transaction, and withdraws the admission when the guard would
-- refuse, so that rate_limit_admitted() raises and the work does not run;
-- rate_limit_fail() is a third transaction, after the request's own, and
-- charges the guard when the admission is still there: the request's own
-- transaction, which would have consumed it, did not commit.
CREATE FUNCTION actloom.rate_limit_guard(admission uuid, class text, key text, quota integer,
										 period integer, burst integer,
										 OUT allowed boolean, OUT remaining integer,
										 OUT reset_after integer, OUT retry_after integer)
RETURNS record
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
BEGIN
	PERFORM actloom._require_arg(admission, 'admission');
	SELECT * INTO allowed, remaining, reset_after, retry_after
	  FROM actloom._rate_limit_check_at(clock_timestamp(), class, key, quota, period, burst);
	IF NOT allowed THEN
		DELETE FROM actloom.rate_limit_admissions a WHERE a.id = admission;
	END IF;
END
$$;
COMMENT ON FUNCTION actloom.rate_limit_guard(uuid, text, text, integer, integer, integer) IS
	'check, taking nothing, that one more failure of a class (quota per period seconds, burst at once) is allowed for a key; when not, withdraw the admission; gateway only';

CREATE FUNCTION actloom.rate_limit_fail(admission uuid, class text, key text, quota integer,
										period integer, burst integer)
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	at constant timestamptz := clock_timestamp();
BEGIN
	PERFORM actloom._require_arg(admission, 'admission');
	PERFORM actloom._rate_limit_args(at, class, key, quota, period, burst, 1);
	DELETE FROM actloom.rate_limit_admissions a WHERE a.id = admission;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	PERFORM actloom._rate_limit_charge_at(at, class, key, quota, period, burst);
	RETURN true;
END
$$;
COMMENT ON FUNCTION actloom.rate_limit_fail(uuid, text, text, integer, integer, integer) IS
	'when the admission was not consumed (its work did not commit), consume it and charge one failure of the class to the key, past the limit if need be; returns whether it did; gateway only';

GRANT EXECUTE ON FUNCTION
	actloom.rate_limit_guard(uuid, text, text, integer, integer, integer),
	actloom.rate_limit_fail(uuid, text, text, integer, integer, integer)
	TO actloom_gateway;

-- Privileges last, as in the install script: EXECUTE is revoked from PUBLIC
-- on every function of the schema, new ones included, and granted back
-- where the privileges fragment says.  Re-applying it to the objects of 0.1
-- changes nothing for them.
\ir ../sql/99_privileges.sql
