/*
 * hello.c: the baseline of "make bench ONLY=shim": a bare h2o 2.2 server
 * with the shim's threading (one evloop per thread, SO_REUSEPORT), answering
 * every request with a small JSON body.  Nothing else: no headers of our
 * own, no log, no metrics.
 *
 *   hello PORT THREADS
 */
#include <h2o.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

static h2o_globalconf_t config;

static int
on_req(h2o_handler_t *self, h2o_req_t *req)
{
    static const char body[] = "{\"status\":\"ok\"}";

    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = sizeof(body) - 1;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    h2o_send_inline(req, body, sizeof(body) - 1);
    return 0;
}

static void
on_accept(h2o_socket_t *listener, const char *err)
{
    h2o_socket_t *sock;

    if (err == NULL && (sock = h2o_evloop_socket_accept(listener)) != NULL)
        h2o_accept(listener->data, sock);
}

static void *
run(void *arg)
{
    int port = (int)(intptr_t)arg, fd = socket(AF_INET, SOCK_STREAM, 0), on = 1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001)};
    h2o_evloop_t *loop = h2o_evloop_create();
    h2o_context_t ctx;
    h2o_accept_ctx_t actx = {.ctx = &ctx, .hosts = config.hosts};
    h2o_socket_t *sock;

    h2o_context_init(&ctx, loop, &config);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 ||
        bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(fd, SOMAXCONN) != 0) {
        perror("listen");
        exit(1);
    }
    sock = h2o_evloop_socket_create(loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    sock->data = &actx;
    h2o_socket_read_start(sock, on_accept);
    for (;;)
        h2o_evloop_run(loop, INT32_MAX);
    return NULL;
}

int
main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 8090, threads = argc > 2 ? atoi(argv[2]) : 1;
    h2o_hostconf_t *host;
    pthread_t tid;

    h2o_config_init(&config);
    host = h2o_config_register_host(&config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_create_handler(h2o_config_register_path(host, "/", 0), sizeof(h2o_handler_t))->on_req = on_req;
    for (int i = 1; i < threads; i++)
        pthread_create(&tid, NULL, run, (void *)(intptr_t)port);
    run((void *)(intptr_t)port);
    return 0;
}
