-- Verify every audit chain of actloom with built-in functions only.
-- One row per chain: entries, ok, the first bad sequence number and why.
WITH entries AS (
	SELECT e.chain, e.seq, e.prev_hash, e.hash,
		   lag(e.seq) OVER w AS prev_seq,
		   lag(e.hash) OVER w AS prev_entry_hash,
		   lead(e.hash) OVER w AS next_entry_hash,
		   sha256(e.prev_hash || '\x0001'::bytea || (
			   SELECT string_agg(coalesce(int4send(length(f)) || f, int4send(-1)), ''::bytea ORDER BY n)
				 FROM unnest(ARRAY[uuid_send(e.chain), int8send(e.seq), timestamptz_send(e.at),
								   uuid_send(e.actor_user), uuid_send(e.actor_api_key),
								   uuid_send(e.actor_session), inet_send(e.client_addr),
								   convert_to(e.action, 'UTF8'), convert_to(e.target_type, 'UTF8'),
								   convert_to(e.target_id, 'UTF8'), convert_to(e.detail::text, 'UTF8')])
					  WITH ORDINALITY AS field(f, n))) AS computed
	  FROM actloom.audit_log e
	WINDOW w AS (PARTITION BY e.chain ORDER BY e.seq)
), checked AS (
	SELECT chain, seq,
		   CASE
			   WHEN seq <> coalesce(prev_seq, 0) + 1 THEN 'gap'
			   WHEN length(prev_hash) <> 32 THEN 'broken link'
			   WHEN prev_hash IS DISTINCT FROM coalesce(prev_entry_hash, decode(repeat('00', 32), 'hex'))
				   THEN CASE WHEN prev_hash = next_entry_hash THEN 'reordered' ELSE 'broken link' END
			   WHEN hash IS DISTINCT FROM computed THEN 'hash mismatch'
		   END AS reason
	  FROM entries
)
SELECT chain, count(*) AS entries, count(reason) = 0 AS ok,
	   min(seq) FILTER (WHERE reason IS NOT NULL) AS first_bad_seq,
	   (array_agg(reason ORDER BY seq) FILTER (WHERE reason IS NOT NULL))[1] AS reason
  FROM checked
 GROUP BY chain
 ORDER BY chain
