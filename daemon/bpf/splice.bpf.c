/* splice.bpf.c — the router's kernel splice: verdict programs that pass bytes between sockets. */
/*
 * Built with clang's bpf target into splice.skel.h (bpftool gen skeleton) and loaded by
 * daemon/splice.c through libbpf. The maps' sizes are set at load time from the router's limit.
 *
 * A verdict program always returns SK_PASS: when the redirect found the peer, the kernel moves
 * the bytes there; when it did not (the pair is being unjoined), they stay on the socket that
 * received them, where riftd's reader finds them. Nothing is ever dropped.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Joined pairs: key the receiving socket's cookie, value the socket its bytes go out of. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 2);
	__type(key, __u64);
	__type(value, __u64);
} rift_peers SEC(".maps");

/* Direct mode, client side: key the client socket's cookie, value the server's own socket. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 2);
	__type(key, __u64);
	__type(value, __u64);
} rift_in SEC(".maps");

/* Direct mode, server side: key the server socket's ports (see rift_out_msg), value the
 * client. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 2);
	__type(key, __u64);
	__type(value, __u64);
} rift_out SEC(".maps");

/* Bytes a joined socket receives are sent out of its peer. */
SEC("sk_skb")
int rift_splice(struct __sk_buff *skb)
{
	__u64 key = bpf_get_socket_cookie(skb);

	bpf_sk_redirect_hash(skb, &rift_peers, &key, 0);
	return SK_PASS;
}

/* Bytes the client sends are queued for the server process's reader: no loopback hop. */
SEC("sk_skb")
int rift_in_skb(struct __sk_buff *skb)
{
	__u64 key = bpf_get_socket_cookie(skb);

	bpf_sk_redirect_hash(skb, &rift_in, &key, BPF_F_INGRESS);
	return SK_PASS;
}

/*
 * Bytes the server sends go out of the client's socket from within the server's send call.
 * sk_msg programs have no socket cookie, so the key is the server socket's ports as sk_msg_md
 * holds them: the remote port (network order, upper 16 bits) above the local port.
 */
SEC("sk_msg")
int rift_out_msg(struct sk_msg_md *msg)
{
	__u64 key = (__u64)msg->remote_port << 32 | msg->local_port;

	bpf_msg_redirect_hash(msg, &rift_out, &key, 0);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "Apache-2.0";
