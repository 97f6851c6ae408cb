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

#define MSB_PROTO_VERSION 3u
#define MSB_PROTO_HDR_SIZE 8u
/* Largest payload either side accepts.  Big enough for a RUN message with a
 * large environment; small enough that a hostile peer cannot make us allocate
 * much. */
#define MSB_PROTO_MAX_PAYLOAD (256u * 1024u)
/* Stream data is cut into chunks of at most this size. */
#define MSB_PROTO_DATA_CHUNK (32u * 1024u)
/* Per-field limits, checked on decode. */
#define MSB_PROTO_MAX_STR (64u * 1024u)
#define MSB_PROTO_MAX_ARGS 4096u
#define MSB_PROTO_MAX_ENV 4096u
#define MSB_PROTO_MAX_MOUNTS 64u
#define MSB_PROTO_MAX_GROUPS 64u
#define MSB_PROTO_MAX_PREFETCH 16u

enum msb_msg_type {
        MSB_MSG_HELLO = 1,     /* both ways: version handshake */
        MSB_MSG_RUN = 2,       /* host -> guest: what to run */
        MSB_MSG_STDIN = 3,     /* host -> guest: data */
        MSB_MSG_STDIN_EOF = 4, /* host -> guest: no more stdin */
        MSB_MSG_STDOUT = 5,    /* guest -> host: data */
        MSB_MSG_STDERR = 6,    /* guest -> host: data */
        MSB_MSG_SIGNAL = 7,    /* host -> guest: deliver a signal */
        MSB_MSG_EXIT = 8,      /* guest -> host: the command ended */
        MSB_MSG_ERROR = 9,     /* guest -> host: setup failed */
        MSB_MSG_EXIT_ACK = 10, /* host -> guest: EXIT/ERROR and all output before
                                * it arrived; the guest may power off now */
        MSB_MSG_TYPE_MAX = 10,
};

/* The PATH a command gets when neither the image nor -e sets one (docker's);
 * the host searches it too when it finds argv[0] for the guest. */
#define MSB_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* RUN flags */
#define MSB_RUN_STDIN (1u << 0) /* forward host stdin */
#define MSB_RUN_IDS (1u << 1)   /* uid, gid, groups, home are resolved: the
                                 * guest does not read /etc/passwd itself */
#define MSB_RUN_KNOWN_FLAGS (MSB_RUN_STDIN | MSB_RUN_IDS)

/* mount flags */
#define MSB_MOUNT_RO (1u << 0)
#define MSB_MOUNT_FILE (1u << 1) /* the source is a regular file */
#define MSB_MOUNT_KNOWN_FLAGS (MSB_MOUNT_RO | MSB_MOUNT_FILE)

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

struct msb_run_msg {
        uint32_t flags;
        char *rootfs_tag;
        char *hostname;
        char *workdir; /* "" = image default (/) */
        char *user;    /* "" = root; else name|uid[:group|gid] */
        uint32_t argc;
        char **argv; /* NULL-terminated, argc >= 1 */
        uint32_t envc;
        char **env; /* NULL-terminated, each "K=V" */
        uint32_t nmounts;
        struct msb_mount_spec *mounts;
        /* with MSB_RUN_IDS: the user, resolved by the host from the image
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
};

struct msb_msg {
        uint16_t type;
        union {
                struct {
                        uint32_t version;
                        char *peer; /* free-form name of the sender */
                } hello;
                struct msb_run_msg run;
                struct {
                        /* Points into the frame buffer the message was
                         * decoded from; valid until that buffer changes. */
                        const uint8_t *data;
                        size_t len;
                } data;
                uint32_t signo;
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
int msb_enc_run(struct msb_buf *out, const struct msb_run_msg *run);
int msb_enc_data(struct msb_buf *out, uint16_t type, const void *data, size_t len);
int msb_enc_empty(struct msb_buf *out, uint16_t type);
int msb_enc_signal(struct msb_buf *out, uint32_t signo);
int msb_enc_exit(struct msb_buf *out, uint32_t kind, uint32_t value);
int msb_enc_error(struct msb_buf *out, const char *step, int32_t err, const char *message);

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
        size_t consumed; /* bytes of the last returned frame, dropped on next call */
};
void msb_reader_free(struct msb_reader *r);
/* Append bytes received from the peer. */
void msb_reader_feed(struct msb_reader *r, const void *data, size_t len);
/* Returns 1 and fills *out when a whole message is available, 0 when more
 * bytes are needed, negative errno on a protocol violation (the stream is
 * then unusable). */
int msb_reader_next(struct msb_reader *r, struct msb_msg *out);

const char *msb_msg_type_name(uint16_t type);
