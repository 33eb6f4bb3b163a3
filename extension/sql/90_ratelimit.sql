--------------------------------------------------------------------------
-- Rate limits shared by several shims (rate_limits.store: database)
--
-- GCRA, computed as the shim's memory store computes it (shim/ratelimit.c):
-- a class allows "quota" requests per "period" seconds, at most "burst" at
-- once.  T = period / quota, in whole microseconds and at least one, is the
-- emission interval and tau = T * (burst - 1) the tolerance.  Each (class,
-- key) has one theoretical arrival time (TAT); a take of cost c at "now" is
-- allowed when max(TAT, now) + c * T - now <= tau + T, and then moves the
-- TAT there.  A TAT in the past says nothing more than no row, so
-- rate_limit_purge() deletes such rows without changing any verdict.
--
-- One INSERT ... ON CONFLICT DO UPDATE decides and moves the TAT under the
-- row's lock: concurrent takes of one key, from any number of shims,
-- serialize on that row and each sees the one before it.  "now" is the
-- database's clock (clock_timestamp(), read once per call), so shims whose
-- clocks differ still share one state.
--
-- The tables are UNLOGGED: a counter is worth no WAL on every request, and a
-- crash that empties them lets clients in early once, no worse.  Keys name
-- clients (addresses, emails): only their SHA-256 digest is stored, in
-- tables nobody but the extension's owner may read.
--
-- The shim sends a request's takes and its own work in one round trip, as
-- two transactions of one pipeline.  The first, rate_limit_admit(), takes
-- and commits whatever happens next: a request the limiter allowed counts
-- even when its work then fails, as in the memory store (a client guessing
-- API keys, whose every attempt rolls back, must still be limited).  When
-- every take is allowed it records the request's admission, a random id the
-- shim chose; the second transaction begins with rate_limit_admitted(),
-- which consumes that record or raises, so the work of a refused request is
-- never run.  Nothing lives in the session, so this holds behind a pooler in
-- transaction mode too.
--------------------------------------------------------------------------

CREATE UNLOGGED TABLE actloom.rate_limits (
	class		text NOT NULL CHECK (class ~ '^[a-z0-9_]{1,31}$'),
	key_hash	bytea NOT NULL CHECK (pg_catalog.length(key_hash) = 32),
	tat			timestamptz NOT NULL,
	CONSTRAINT rate_limits_pkey PRIMARY KEY (class, key_hash)
) WITH (fillfactor = 80);	-- room on the page keeps the TAT updates HOT
COMMENT ON TABLE actloom.rate_limits IS
	'GCRA state of the shared rate limiter: the theoretical arrival time of each (class, SHA-256 of the key)';
REVOKE ALL ON actloom.rate_limits FROM PUBLIC;

CREATE UNLOGGED TABLE actloom.rate_limit_admissions (
	id			uuid PRIMARY KEY,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE actloom.rate_limit_admissions IS
	'requests rate_limit_admit() allowed whose work has not begun (or rolled back); rate_limit_admitted() consumes them';
REVOKE ALL ON actloom.rate_limit_admissions FROM PUBLIC;

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

-- The take itself, at a given time: rate_limit_take() and rate_limit_admit()
-- pass the database's clock, the regression tests a time of their own.
CREATE FUNCTION actloom._rate_limit_take_at(at timestamptz, class text, key text, quota integer,
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
COMMENT ON FUNCTION actloom._rate_limit_take_at(timestamptz, text, text, integer, integer, integer, integer) IS
	'internal: one GCRA take at a given time; rate_limit_take() without the clock';

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

CREATE FUNCTION actloom.rate_limit_take(class text, key text, quota integer, period integer,
										burst integer, cost integer DEFAULT 1,
										OUT allowed boolean, OUT remaining integer,
										OUT reset_after integer, OUT retry_after integer)
RETURNS record
LANGUAGE sql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
BEGIN ATOMIC
	SELECT * FROM actloom._rate_limit_take_at(pg_catalog.clock_timestamp(), class, key, quota, period,
											  burst, cost);
END;
COMMENT ON FUNCTION actloom.rate_limit_take(text, text, integer, integer, integer, integer) IS
	'take cost requests of a class (quota per period seconds, burst at once) for a key; says whether allowed, how many remain, seconds until whole again and until a retry may succeed; gateway only';

CREATE FUNCTION actloom.rate_limit_admit(admission uuid, classes text[], keys text[], quotas integer[],
										 periods integer[], bursts integer[])
RETURNS TABLE (class text, allowed boolean, remaining integer, reset_after integer, retry_after integer)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	at constant timestamptz := clock_timestamp();
	n integer := cardinality(classes);
	v record;
BEGIN
	IF admission IS NULL OR classes IS NULL OR keys IS NULL OR quotas IS NULL OR periods IS NULL
	   OR bursts IS NULL THEN
		RAISE EXCEPTION 'argument "%" must not be null',
			CASE WHEN admission IS NULL THEN 'admission' WHEN classes IS NULL THEN 'classes'
				 WHEN keys IS NULL THEN 'keys' WHEN quotas IS NULL THEN 'quotas'
				 WHEN periods IS NULL THEN 'periods' ELSE 'bursts' END
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF n NOT BETWEEN 1 AND 16 OR array_ndims(classes) <> 1 OR array_lower(classes, 1) <> 1
	   OR cardinality(keys) <> n OR cardinality(quotas) <> n OR cardinality(periods) <> n
	   OR cardinality(bursts) <> n OR array_lower(keys, 1) <> 1 OR array_lower(quotas, 1) <> 1
	   OR array_lower(periods, 1) <> 1 OR array_lower(bursts, 1) <> 1 THEN
		RAISE EXCEPTION 'classes, keys, quotas, periods and bursts must be lists of equal length'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'Each is a one-dimensional array of 1 to 16 elements, the n-th of each describing the n-th take.';
	END IF;
	FOR i IN 1 .. n LOOP
		v := actloom._rate_limit_take_at(at, classes[i], keys[i], quotas[i], periods[i], bursts[i], 1);
		class := classes[i];
		allowed := v.allowed;
		remaining := v.remaining;
		reset_after := v.reset_after;
		retry_after := v.retry_after;
		RETURN NEXT;
		-- As the memory store: the takes after a refusal are not made.
		IF NOT v.allowed THEN
			RETURN;
		END IF;
	END LOOP;
	INSERT INTO actloom.rate_limit_admissions (id) VALUES (admission);
END
$$;
COMMENT ON FUNCTION actloom.rate_limit_admit(uuid, text[], text[], integer[], integer[], integer[]) IS
	'take one request of each class for its key, in order, stopping at the first refusal; when all are allowed, record the admission for rate_limit_admitted(); gateway only';

CREATE FUNCTION actloom.rate_limit_admitted(admission uuid)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
BEGIN
	PERFORM actloom._require_arg(admission, 'admission');
	DELETE FROM actloom.rate_limit_admissions a WHERE a.id = admission;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'the request was not admitted by the rate limiter'
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Call rate_limit_admit() with this admission first, in a transaction of its own.';
	END IF;
END
$$;
COMMENT ON FUNCTION actloom.rate_limit_admitted(uuid) IS
	'consume an admission of rate_limit_admit(), or raise 55000: the first statement of an admitted request''s transaction; gateway only';

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

-- Expired state, and admissions left behind: the work of an admitted
-- request that failed rolled back the consumption of its admission with it
-- (or its connection was lost between the two transactions).  The id was
-- random and is never sent again, so such a row admits nothing; a minute
-- is far longer than a pipeline takes from one transaction to the next.
CREATE FUNCTION actloom.rate_limit_purge()
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	n bigint;
BEGIN
	DELETE FROM actloom.rate_limits r WHERE r.tat < clock_timestamp();
	GET DIAGNOSTICS n = ROW_COUNT;
	DELETE FROM actloom.rate_limit_admissions a WHERE a.created_at < now() - interval '1 minute';
	RETURN n;
END
$$;
COMMENT ON FUNCTION actloom.rate_limit_purge() IS
	'delete rate-limit states whose TAT has passed (they change no verdict) and stale admissions; returns the states deleted; the shim calls it every minute';

GRANT EXECUTE ON FUNCTION
	actloom.rate_limit_take(text, text, integer, integer, integer, integer),
	actloom.rate_limit_admit(uuid, text[], text[], integer[], integer[], integer[]),
	actloom.rate_limit_admitted(uuid),
	actloom.rate_limit_guard(uuid, text, text, integer, integer, integer),
	actloom.rate_limit_fail(uuid, text, text, integer, integer, integer),
	actloom.rate_limit_purge()
	TO actloom_gateway;
