/*
 * routes.h: the shim's own routes, in one table (routes.c), and the
 * handlers they name (handlers/).
 */
#ifndef ACTLOOM_ROUTES_H
#define ACTLOOM_ROUTES_H

#include "shim.h"

/* Answers one request; called by the h2o handler of every listener. */
void routes_dispatch(h2o_req_t *req, struct shim_thread *thread, int on_metrics_listener);

/* handlers/health.c */
void handle_healthz(struct shim_req *r);
void handle_readyz(struct shim_req *r);
void handle_metrics(struct shim_req *r);

/* handlers/machine.c: /v{version}/{path}, the registered endpoints */
void handle_machine(struct shim_req *r);

/* handlers/auth.c: sign-up, sign-in, sign-out, the session and its CSRF token */
void handle_auth_signup(struct shim_req *r);
void handle_auth_login(struct shim_req *r);
void handle_auth_logout(struct shim_req *r);
void handle_auth_logout_all(struct shim_req *r);
void handle_auth_session(struct shim_req *r);
void handle_auth_csrf(struct shim_req *r);

/* handlers/manage.c: /api/..., the management API of signed-in people */
void handle_manage(struct shim_req *r);

#endif
