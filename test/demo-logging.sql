-- The logging settings of the demo's application role, demo_app, as the
-- README ("Keeping secrets out of the log") tells every installation to set
-- them for its own: its statements carry passwords, secrets and API keys,
-- and none of them may reach the server log, not even with an error.
-- run-demo.sh applies them at every start (a superuser's ALTER ROLE), so
-- that a demo loaded by an earlier release gets them too.
\set ON_ERROR_STOP on
ALTER ROLE demo_app SET log_statement = 'none';
ALTER ROLE demo_app SET log_min_error_statement = 'panic';
ALTER ROLE demo_app SET log_min_duration_statement = -1;
ALTER ROLE demo_app SET log_min_duration_sample = -1;
ALTER ROLE demo_app SET log_duration = off;
ALTER ROLE demo_app SET log_parameter_max_length = 0;
ALTER ROLE demo_app SET log_parameter_max_length_on_error = 0;
