// inkcast's libtailscale: the C API of Tailscale's libtailscale (tailscale.h),
// implemented over tsnet by tailnet/libtailscale/*.go in this repository.
//
// Every call returns 0 on success. On failure it returns -1 (details from
// tailscale_errmsg), or EBADF for an unknown handle, ERANGE for a buffer too
// small, EINVAL for a NULL pointer. Unlike the upstream library, NULL
// pointers are refused instead of panicking the Go runtime, but callers
// should still never pass NULL.
//
// Differences from upstream, all on purpose:
//   - tailscale_dial reaches only this tailnet's nodes (a peer's or our own
//     name or address); any other name or address is an error, never a
//     lookup in the system's DNS nor a dial through the host's network.
//   - tailscale_dial waits at most 30 s for the node to be running, and
//     the connection attempt is bounded too.
//   - tailscale_close on a node never started is fine (upstream panics);
//     it cancels a tailscale_up in progress.
//   - tailscale_set_logfd also routes the "user" logs (login URL
//     reminders), not only the backend's; it duplicates fd.
//   - tailscale_accept returns EBADF once the listener is closed (upstream
//     dereferences a missing control message).
//   - log uploading (logtail) is disabled for the whole process.
#ifndef TAILSCALE_H
#define TAILSCALE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int tailscale;
typedef int tailscale_conn;
typedef int tailscale_listener;

extern tailscale tailscale_new(void);
extern int tailscale_start(tailscale sd);
extern int tailscale_up(tailscale sd);
extern int tailscale_close(tailscale sd);

extern int tailscale_set_dir(tailscale sd, const char* dir);
extern int tailscale_set_hostname(tailscale sd, const char* hostname);
extern int tailscale_set_authkey(tailscale sd, const char* authkey);
extern int tailscale_set_control_url(tailscale sd, const char* control_url);
extern int tailscale_set_ephemeral(tailscale sd, int ephemeral);
extern int tailscale_set_logfd(tailscale sd, int fd);

extern int tailscale_getips(tailscale sd, char* buf, size_t buflen);
extern int tailscale_dial(tailscale sd, const char* network, const char* addr, tailscale_conn* conn_out);
extern int tailscale_listen(tailscale sd, const char* network, const char* addr, tailscale_listener* listener_out);
extern int tailscale_getremoteaddr(tailscale_listener l, tailscale_conn conn, char* buf, size_t buflen);
extern int tailscale_accept(tailscale_listener listener, tailscale_conn* conn_out);
extern int tailscale_loopback(tailscale sd, char* addr_out, size_t addrlen, char* proxy_cred_out, char* local_api_cred_out);
extern int tailscale_enable_funnel_to_localhost_plaintext_http1(tailscale sd, int localhostPort);
extern int tailscale_errmsg(tailscale sd, char* buf, size_t buflen);

// inkcast's own additions (not in upstream libtailscale).
extern int inkcast_tailnet_version(char* buf, size_t buflen);
extern int inkcast_tailnet_getenv(const char* name, char* buf, size_t buflen);

#ifdef __cplusplus
}
#endif

#endif
