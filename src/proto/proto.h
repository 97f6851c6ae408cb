/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb control protocol: the wire format between the host (libmsb) and the
 * guest (agentd), carried over a virtio-serial port.
 *
 * Every frame is an 8-byte header followed by a payload:
 *
 *     u32 payload_len (LE) | u16 type (LE) | u16 reserved (must be 0)
 *
 * Payload fields are little-endian integers and strings encoded as
 * u32 length + bytes (no terminating NUL; an embedded NUL is rejected).
 * Each side sends HELLO first; the host sends RUN right after its HELLO,
 * without waiting for the guest's (both check the other's version).
 *
 * Both ends treat everything they receive as untrusted: decoders read through
 * a bounds-checked cursor and reject unknown types, oversized frames, bad
 * counts and trailing bytes.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MSB_PROTO_VERSION 7u
#define MSB_PROTO_HDR_SIZE 8u
/* Largest payload either side accepts.  Big enough for an EXEC message with a
 * large environment; small enough that a hostile peer cannot make us allocate
 * much. */
#define MSB_PROTO_MAX_PAYLOAD (256u * 1024u)
/* Stream data is cut into chunks of at most this size. */
#define MSB_PROTO_DATA_CHUNK (32u * 1024u)
/* Flow control, per process and direction: at most this many bytes of
 * STDOUT+STDERR (guest -> host) or of STDIN (host -> guest) may be sent and
 * not yet acknowledged with ACK.  The receiver acknowledges once it has
 * handed the bytes on (written them to the process, the terminal, the log).
 * A peer that sends more is broken or hostile: the stream is dropped. */
#define MSB_PROTO_WINDOW (256u * 1024u)
/* Processes alive at once in one guest (the main one and execs). */
#define MSB_PROTO_MAX_PROCS 1024u
/* Per-field limits, checked on decode. */
#define MSB_PROTO_MAX_STR (64u * 1024u)
#define MSB_PROTO_MAX_ARGS 4096u
#define MSB_PROTO_MAX_ENV 4096u
#define MSB_PROTO_MAX_MOUNTS 128u
#define MSB_PROTO_MAX_GROUPS 64u
#define MSB_PROTO_MAX_PREFETCH 16u

/*
 * Conversation on the guest channel:
 *
 *   host:  HELLO, SETUP, [EXEC id=1 MAIN]        (sent at once, no round trip)
 *   guest: HELLO, then per process: STARTED id | ERROR id; output; EXIT id
 *   host:  EXEC id=N (any time), STDIN/STDIN_EOF/SIGNAL/RESIZE/ACK id
 *   host:  SHUTDOWN (kill everything, sync, power off)
 *
 * An EXEC with MSB_EXEC_INTERNAL runs a routine built into agentd (msb cp's
 * tar streams) instead of a program; everything else about it is a
 * process's: STARTED, streams, windows, SIGNAL, EXIT.
 *
 * Process ids are chosen by the host: nonzero, never reused within one boot.
 * stdin that reaches agentd after a process's EXIT is dropped and still
 * acknowledged: an ACK may name an id that has ended.
 * id 0 in ERROR means the sandbox itself (setup failed; the guest powers
 * off).  When the MAIN process ends, the guest kills every other process,
 * syncs all writable file systems, then sends EXIT for it: the host may stop
 * the VM as soon as that EXIT arrives.
 *
 * The same framing carries the host-side conversation between the msb CLI
 * and a sandbox's supervisor (over its unix socket): after HELLO, one
 * request per connection:
 *
 *   EXEC            answered with PROC_INFO (the process's id in the
 *                   sandbox, pid 0), then STARTED or ERROR; with
 *                   MSB_EXEC_KEEP the process outlives the connection
 *   ATTACH id, flags  id 1: the main process; another id: a kept process
 *                   (backlog, then live output, then EXIT; see below)
 *   STOP (id 1, grace), WAIT
 *   SIGNAL id, signo  bare: to process id (1: the main one); EXIT 0 or ERROR
 *   RESIZE id, rows, cols  bare: to process id's terminal; EXIT 0 or ERROR
 *   PROCS           answered with a PROC_INFO per process, then EXIT 0
 *
 * The connection's process is always id 1 there, whatever its id in the
 * sandbox; PROC_INFO alone names a process by that id.  ATTACH, STOP, WAIT,
 * PROCS and PROC_INFO never appear on the guest channel, and each side
 * rejects types not meant for it.
 *
 * Kept processes (EXEC with MSB_EXEC_KEEP) run on when their client goes:
 * the supervisor acknowledges their output itself and keeps the last
 * 256 KiB of it (STDOUT and STDERR frames, in order).  Any
 * number of connections may ATTACH to one and read it at once (each is
 * dropped once it falls 1 MiB behind); one of them at a time may write its
 * stdin (MSB_ATTACH_STDIN; another gets ERROR EBUSY).  A writer that goes
 * leaves stdin open; STDIN_EOF closes it.  Once a kept process ended, its
 * PROC_INFO, backlog and EXIT stay for later readers (the 64 newest).
 */
enum msb_msg_type {
        MSB_MSG_HELLO = 1,     /* both ways: version handshake */
        MSB_MSG_SETUP = 2,     /* host -> guest: root, hostname, mounts */
        MSB_MSG_EXEC = 3,      /* host -> guest: start a process */
        MSB_MSG_STDIN = 4,     /* host -> guest: id, data */
        MSB_MSG_STDIN_EOF = 5, /* host -> guest: id; no more stdin */
        MSB_MSG_STDOUT = 6,    /* guest -> host: id, data (the terminal, with TTY) */
        MSB_MSG_STDERR = 7,    /* guest -> host: id, data */
        MSB_MSG_SIGNAL = 8,    /* host -> guest: id, signo (to its process group) */
        MSB_MSG_RESIZE = 9,    /* host -> guest: id, rows, cols of its terminal */
        MSB_MSG_ACK = 10,      /* both ways: id, bytes handed on (flow control) */
        MSB_MSG_STARTED = 11,  /* guest -> host: id, guest pid */
        MSB_MSG_EXIT = 12,     /* guest -> host: id, how the process ended */
        MSB_MSG_ERROR = 13,    /* guest -> host: id (0: setup), step, errno, text */
        MSB_MSG_SHUTDOWN = 14, /* host -> guest: stop everything, sync, power off */
        /* CLI <-> supervisor only */
        MSB_MSG_ATTACH = 15,   /* id 1, flags: the main process's streams */
        MSB_MSG_STOP = 16,     /* grace (ms): SIGTERM to main, SHUTDOWN after grace */
        MSB_MSG_WAIT = 17,     /* answered with EXIT once the sandbox stopped */
        MSB_MSG_PROCS = 18,    /* the sandbox's processes: PROC_INFO each, then EXIT */
        MSB_MSG_PROC_INFO = 19, /* supervisor -> CLI: id (the sandbox's), pid, flags, exit, times, argv */
        MSB_MSG_TYPE_MAX = 19,
};

/* The PATH a command gets when neither the image nor -e sets one (docker's);
 * the host searches it too when it finds argv[0] for the guest. */
#define MSB_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* SETUP flags */
#define MSB_SETUP_DISK (1u << 0) /* the root's writable layer is the ext4 file
                                  * system on the first virtio-blk disk
                                  * (/dev/vda), kept across boots; else tmpfs */
#define MSB_SETUP_NET (1u << 1)  /* eth0 is configured from setup.net; else
                                  * the guest has only lo */
#define MSB_SETUP_ROOT_RW (1u << 2) /* the root share is the root itself,
                                     * read-write, no overlay (an OCI
                                     * bundle's root: writes reach the host) */
#define MSB_SETUP_ROOT_RO (1u << 3) /* with ROOT_RW: mounted read-only after all
                                     * (an OCI bundle's root.readonly) */
#define MSB_SETUP_KNOWN_FLAGS (MSB_SETUP_DISK | MSB_SETUP_NET | MSB_SETUP_ROOT_RW | MSB_SETUP_ROOT_RO)

/* EXEC flags */
#define MSB_EXEC_STDIN (1u << 0) /* stdin comes from STDIN messages; else /dev/null */
#define MSB_EXEC_IDS (1u << 1)   /* uid, gid, groups, home are resolved: the
                                  * guest does not read /etc/passwd itself */
#define MSB_EXEC_TTY (1u << 2)   /* a pseudo-terminal (rows, cols); stdout and
                                  * stderr both go through it as STDOUT */
#define MSB_EXEC_MAIN (1u << 3)  /* the sandbox's main process (at most one) */
/* Not a program: argv[0] names a routine built into agentd, run in a child
 * of agentd (as uid, gid) with the same streams, exit status and flow
 * control as a program (src/agent/tarcp.c):
 *   cp-out PATH NAME      a tar of PATH on stdout, its top entry named NAME
 *                         (PATH may end in "/.": a directory's own entry)
 *   cp-in DIR NAME [a]    extract the tar on stdin (top entry NAME, or "."
 *                         for a directory's contents) where docker cp would
 *                         put it for destination DIR; "a": keep the
 *                         archive's owners, else root's
 * Errors: one line on stderr, exit 2 if a named path does not exist, else 1.
 * The file operations of the library's files.c (src/agent/fsops.c; guest
 * paths, absolute; records on stdout as proto/filerec.h frames them):
 *   fs-stat PATH                  one INFO record (the entry, not followed)
 *   fs-list PATH DEPTH MAX        INFO records of the entries below PATH
 *                                 (DEPTH levels), at most MAX, then CUT if
 *                                 there were more
 *   fs-mkdir PATH MODE [p]        fs-remove PATH [r]   fs-rename FROM TO
 *   fs-read PATH OFFSET LENGTH    a SIZE record, then the bytes
 *   fs-write PATH MODE [p]        stdin into a temporary file, renamed to
 *                                 PATH at its end (STDIN_EOF)
 *   fs-watch PATH [r]             EVENT records until killed
 * Their errors: one line "ERRNO text" on stderr (the guest's errno in
 * decimal), exit 1.
 * Neither MAIN nor TTY. */
#define MSB_EXEC_INTERNAL (1u << 4)
/* caps[] are the process's capability sets (bounding, effective,
 * permitted, inheritable, ambient; bit N is capability N), seccomp its
 * filter; OCI's process.capabilities and linux.seccomp */
#define MSB_EXEC_CONFINE (1u << 5)
#define MSB_EXEC_NO_NEW_PRIVS (1u << 6) /* prctl(PR_SET_NO_NEW_PRIVS) */
/* CLI -> supervisor only (it takes the flag off; agentd ignores it): the
 * process is kept, running on without a client (see above) */
#define MSB_EXEC_KEEP (1u << 7)
/* CLI -> supervisor, with INTERNAL only: the routine runs as user ("" = the
 * sandbox's), resolved as for an exec, instead of as root (msb cp's way) */
#define MSB_EXEC_AS_USER (1u << 8)
#define MSB_EXEC_KNOWN_FLAGS                                                                               \
        (MSB_EXEC_STDIN | MSB_EXEC_IDS | MSB_EXEC_TTY | MSB_EXEC_MAIN | MSB_EXEC_INTERNAL | MSB_EXEC_CONFINE | \
         MSB_EXEC_NO_NEW_PRIVS | MSB_EXEC_KEEP | MSB_EXEC_AS_USER)
/* classic BPF instructions of a seccomp filter (the kernel's BPF_MAXINSNS) */
#define MSB_PROTO_MAX_SECCOMP 4096u
enum { MSB_CAP_BOUNDING, MSB_CAP_EFFECTIVE, MSB_CAP_PERMITTED, MSB_CAP_INHERITABLE, MSB_CAP_AMBIENT, MSB_CAP_SETS };

/* ATTACH flags (the first two are msb.h's too, with the same values) */
#define MSB_ATTACH_STDIN (1u << 0)      /* the client forwards its stdin (a kept
                                         * process's: its one writer) */
#define MSB_ATTACH_NO_BACKLOG (1u << 1) /* a kept process: live output only */
#define MSB_ATTACH_INFO (1u << 2)       /* PROC_INFO first (else nothing until output) */
#define MSB_ATTACH_NO_OUTPUT (1u << 3)  /* a kept process's stdin writer that
                                         * reads nothing but ACKs and EXIT */
#define MSB_ATTACH_KNOWN_FLAGS \
        (MSB_ATTACH_STDIN | MSB_ATTACH_NO_BACKLOG | MSB_ATTACH_INFO | MSB_ATTACH_NO_OUTPUT)

/* PROC_INFO flags */
#define MSB_PROC_TTY (1u << 0)
#define MSB_PROC_KEPT (1u << 1)
#define MSB_PROC_MAIN (1u << 2)
#define MSB_PROC_STDIN (1u << 3)  /* its stdin is open (it had one, no STDIN_EOF yet) */
#define MSB_PROC_EXITED (1u << 4) /* exit kind and value say how; else both 0 */
#define MSB_PROC_KNOWN_FLAGS (MSB_PROC_TTY | MSB_PROC_KEPT | MSB_PROC_MAIN | MSB_PROC_STDIN | MSB_PROC_EXITED)

/* mount flags */
#define MSB_MOUNT_RO (1u << 0)
#define MSB_MOUNT_FILE (1u << 1) /* the source is a regular file */
/* a file system of the guest kernel's own: sub names its type (tmpfs,
 * mqueue or cgroup2), tag holds a tmpfs's options (size=, mode=,
 * nr_inodes=, uid=, gid=; nothing else), "" for the others */
#define MSB_MOUNT_KERNFS (1u << 2)
#define MSB_MOUNT_NOSUID (1u << 3)
#define MSB_MOUNT_NODEV (1u << 4)
#define MSB_MOUNT_NOEXEC (1u << 5)
/* Not mounts of something new: steps on the guest's root once everything
 * is mounted, for OCI's linux.maskedPaths, readonlyPaths and sysctl (tag
 * and sub "" unless said; a missing path is skipped as runc does).  MASK:
 * /dev/null over a file, an empty read-only tmpfs over a directory.
 * ROPATH: the path bind-mounted read-only onto itself.  SYSCTL: path is
 * /proc/sys/..., tag the value written to it. */
#define MSB_MOUNT_MASK (1u << 6)
#define MSB_MOUNT_ROPATH (1u << 7)
#define MSB_MOUNT_SYSCTL (1u << 8)
#define MSB_MOUNT_STEP (MSB_MOUNT_MASK | MSB_MOUNT_ROPATH | MSB_MOUNT_SYSCTL)
#define MSB_MOUNT_KNOWN_FLAGS                                                                                    \
        (MSB_MOUNT_RO | MSB_MOUNT_FILE | MSB_MOUNT_KERNFS | MSB_MOUNT_NOSUID | MSB_MOUNT_NODEV | MSB_MOUNT_NOEXEC | \
         MSB_MOUNT_STEP)

/* EXIT kinds */
#define MSB_EXIT_CODE 0u   /* value is the exit status (0..255) */
#define MSB_EXIT_SIGNAL 1u /* value is the signal number (1..64) */

struct msb_mount_spec {
        char *tag;  /* virtio-fs tag */
        char *sub;  /* entry in the share's root to mount ("" = the root itself);
                       one path component: no '/', not "." or ".." */
        char *path; /* absolute guest path */
        uint32_t flags;
};

/* eth0's static configuration (no DHCP in the guest).  With msb-netd the
 * gateways are also the resolvers.  prefix6 0: no IPv6.  A gateway of all
 * zeros: no default route; one outside the prefix (a /32 as Calico gives)
 * is reached on the link. */
struct msb_net_spec {
        uint8_t addr4[4], gw4[4];
        uint32_t prefix4; /* 1..32 */
        uint8_t addr6[16], gw6[16];
        uint32_t prefix6; /* 0 or 1..128 */
        uint32_t mtu;     /* 68..65520 */
};

struct msb_setup_msg {
        uint32_t flags;
        char *rootfs_tag;
        char *hostname;
        uint32_t nmounts;
        struct msb_mount_spec *mounts;
        struct msb_net_spec net; /* with MSB_SETUP_NET */
};

#define MSB_PROTO_MAX_RLIMITS 16u
#define MSB_PROTO_RLIMIT_NR 16u /* Linux's RLIM_NLIMITS */
struct msb_rlimit {
        uint32_t resource;
        uint64_t soft, hard; /* UINT64_MAX: unlimited */
};

struct msb_exec_msg {
        uint32_t id;
        uint32_t flags;
        char *workdir; /* "" = / */
        char *user;    /* "" = root; else name|uid[:group|gid] */
        uint32_t argc;
        char **argv; /* NULL-terminated, argc >= 1 */
        uint32_t envc;
        char **env; /* NULL-terminated, each "K=V" */
        /* with MSB_EXEC_IDS: the user, resolved by the host from the image
         * (ngroups >= 1, groups[0] == gid, home absolute); else zero/"" */
        uint32_t uid, gid, ngroups;
        uint32_t groups[MSB_PROTO_MAX_GROUPS];
        char *home;
        /* argv[0] found on the image's PATH by the host (absolute), or ""
         * for the guest to search PATH itself */
        char *exec_path;
        /* more files to read ahead before exec (absolute): the program
         * interpreter and libraries of a dynamic executable; a hint */
        uint32_t nprefetch;
        char **prefetch;
        /* with MSB_EXEC_TTY: the terminal's size (1..65535 each), else 0 */
        uint32_t rows, cols;
        /* setrlimit() before exec: resource < MSB_PROTO_RLIMIT_NR, soft <= hard */
        uint32_t nrlimits;
        struct msb_rlimit rlimits[MSB_PROTO_MAX_RLIMITS];
        /* with MSB_EXEC_CONFINE, else zero */
        uint64_t caps[MSB_CAP_SETS];
        uint32_t nseccomp;  /* instructions, 0..MSB_PROTO_MAX_SECCOMP */
        uint8_t *seccomp;   /* nseccomp * 8 bytes: struct sock_filter, host order */
};

/* PROC_INFO: one process of a sandbox (its id is the message's) */
struct msb_proc_info_msg {
        uint32_t pid;   /* the guest's, 0 until it started (at most 1 << 22) */
        uint32_t flags; /* MSB_PROC_* */
        uint32_t exit_kind, exit_value; /* with MSB_PROC_EXITED, as EXIT's */
        uint64_t started_ms; /* unix time in ms when it was started */
        uint64_t dropped;    /* a kept process's output bytes its backlog let go */
        uint32_t argc;       /* 0..MSB_PROTO_MAX_ARGS (the supervisor keeps less) */
        char **argv;         /* NULL-terminated */
};

struct msb_msg {
        uint16_t type;
        uint32_t id; /* the process, for the types that name one; else 0 */
        union {
                struct {
                        uint32_t version;
                        char *peer; /* free-form name of the sender */
                } hello;
                struct msb_setup_msg setup;
                struct msb_exec_msg exec; /* exec.id == id */
                struct msb_proc_info_msg proc_info;
                struct {
                        /* Points into the frame buffer the message was
                         * decoded from; valid until that buffer changes. */
                        const uint8_t *data;
                        size_t len;
                } data;
                uint32_t signo;
                uint32_t ack;  /* bytes */
                uint32_t pid;  /* STARTED */
                uint32_t grace_ms; /* STOP */
                uint32_t flags;    /* ATTACH */
                struct {
                        uint32_t rows, cols;
                } resize;
                struct {
                        uint32_t kind;
                        uint32_t value;
                } exit;
                struct {
                        char *step;
                        int32_t err; /* errno, 0 if none */
                        char *message;
                } error;
        } u;
};

/* Growable byte buffer used for outgoing queues. */
struct msb_buf {
        uint8_t *data;
        size_t len; /* bytes valid from data[off] */
        size_t off; /* consumed prefix */
        size_t cap;
};
void msb_buf_free(struct msb_buf *b);
#define _cleanup_buf_ __attribute__((cleanup(msb_buf_free)))
void msb_buf_consume(struct msb_buf *b, size_t n);
/* Append raw bytes (no framing). */
void msb_buf_append(struct msb_buf *b, const void *p, size_t n);
static inline size_t msb_buf_pending(const struct msb_buf *b)
{
        return b->len;
}
static inline const uint8_t *msb_buf_head(const struct msb_buf *b)
{
        return b->data + b->off;
}

/* Encoders append one whole frame to out.  They return 0, or -E2BIG when the
 * message would not fit in MSB_PROTO_MAX_PAYLOAD / the field limits. */
int msb_enc_hello(struct msb_buf *out, uint32_t version, const char *peer);
/* the limits agentd accepts (and msb_enc_setup checks) */
bool msb_net_spec_ok(const struct msb_net_spec *n);
int msb_enc_setup(struct msb_buf *out, const struct msb_setup_msg *setup);
int msb_enc_exec(struct msb_buf *out, const struct msb_exec_msg *exec);
/* STDIN, STDOUT, STDERR */
int msb_enc_data(struct msb_buf *out, uint16_t type, uint32_t id, const void *data, size_t len);
/* SHUTDOWN, WAIT, PROCS: no payload */
int msb_enc_empty(struct msb_buf *out, uint16_t type);
/* STDIN_EOF: the id alone */
int msb_enc_id(struct msb_buf *out, uint16_t type, uint32_t id);
/* SIGNAL (signo), ACK (bytes), STARTED (pid), ATTACH (flags), STOP (grace
 * in ms; id 1, the main process) */
int msb_enc_u32(struct msb_buf *out, uint16_t type, uint32_t id, uint32_t v);
int msb_enc_resize(struct msb_buf *out, uint32_t id, uint32_t rows, uint32_t cols);
int msb_enc_exit(struct msb_buf *out, uint32_t id, uint32_t kind, uint32_t value);
int msb_enc_error(struct msb_buf *out, uint32_t id, const char *step, int32_t err, const char *message);
/* PROC_INFO for process id (-EINVAL for values the decoder refuses) */
int msb_enc_proc_info(struct msb_buf *out, uint32_t id, const struct msb_proc_info_msg *pi);

/* Parse a frame header.  Returns 0 and fills type/len, or -EPROTO for an
 * unknown type, nonzero reserved field or oversized payload. */
int msb_frame_header(const uint8_t hdr[MSB_PROTO_HDR_SIZE], uint16_t *ret_type, uint32_t *ret_len);

/* Decode a payload of the given type.  On success fills *out (strings are
 * owned by *out, data points into payload) and returns 0; on failure returns
 * -EBADMSG and leaves nothing allocated. */
int msb_msg_decode(uint16_t type, const uint8_t *payload, size_t len, struct msb_msg *out);
void msb_msg_free(struct msb_msg *m);

/* Incremental reader: feed bytes, take whole messages out. */
struct msb_reader {
        uint8_t *buf;
        size_t len;
        size_t cap;
        size_t consumed; /* bytes already returned; dropped at the next feed */
};
void msb_reader_free(struct msb_reader *r);
/* Append bytes received from the peer. */
void msb_reader_feed(struct msb_reader *r, const void *data, size_t len);
/* Returns 1 and fills *out when a whole message is available, 0 when more
 * bytes are needed, negative errno on a protocol violation (the stream is
 * then unusable). */
int msb_reader_next(struct msb_reader *r, struct msb_msg *out);

const char *msb_msg_type_name(uint16_t type);
