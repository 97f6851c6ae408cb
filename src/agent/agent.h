/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agentd's parts:
 *   agentd.c  boot, the control port, failure and power-off
 *   root.c    the guest's root: image share, overlay (tmpfs or disk upper),
 *             kernel file systems, volumes, the switch into it
 *   procs.c   after SETUP: the process manager and its poll() loop
 *   tarcp.c   msb cp's routines (MSB_EXEC_INTERNAL), run in a child
 *   fsops.c   the library's file operations (fs-*), routines likewise
 *   netif.c   lo, eth0 and /etc/{hosts,resolv.conf} from SETUP
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "proto/proto.h"

#define NEWROOT "/mnt/root"
/* Stop reading processes' output while this much is queued for the host:
 * the host's consumer sets the pace. */
#define OUTQ_HIGH (1u << 20)
/* How long agentd waits for SHUTDOWN once it has said all it had to (the
 * main process's EXIT, or a setup ERROR): the host normally stops the VM
 * before; this is the backstop. */
#define SHUTDOWN_WAIT_MS 30000

/* ---- agentd.c ---- */
extern int ctl_fd;
extern struct msb_buf outq; /* frames for the host */
extern struct msb_reader rd; /* frames from the host */
extern bool debug;

void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int64_t now_ms(void);
/* One round of I/O on the control port once poll() returned revents for it. */
void ctl_io(short revents);
/* Open the control port if it exists yet and say HELLO; true once open. */
bool try_ctl_port(void);
/* The sandbox cannot go on: ERROR id 0 {step, err, text} to the host, then
 * power off (every process killed, file systems synced). */
__attribute__((noreturn, format(printf, 3, 4))) void fail(const char *step, int err, const char *fmt, ...);
/* SHUTDOWN, or its backstop: kill every process, sync, power off now. */
__attribute__((noreturn)) void halt(void);

/* ---- root.c ---- */
/* An absolute guest path without ".." components, short enough to put
 * under NEWROOT. */
bool path_ok(const char *p);
/* The image root up to what needs SETUP: called early with the tag from
 * the kernel command line; failures are kept for setup_root() to report. */
void mount_base(const char *tag);
/* SETUP's root: checks or makes the base root (on the disk with
 * MSB_SETUP_DISK), reads ahead first's executable (may be NULL), mounts the
 * volumes, sets the hostname and moves into the new root.  Fails the
 * sandbox on error. */
void setup_root(const struct msb_setup_msg *su, const char *premounted, const struct msb_exec_msg *first);
/* syncfs() of the read-write volumes and of the disk upper: what the host
 * must find written once it has the main process's EXIT. */
void root_sync(void);
/* syncfs() of the disk upper, if there is one. */
void root_sync_disk(void);

/* ---- netif.c ---- */
/* lo up; with MSB_SETUP_NET eth0 configured; /etc/hosts (and resolv.conf)
 * written under NEWROOT, unless it is an OCI bundle's (MSB_SETUP_ROOT_RW).  Before the volumes: a volume at /etc/hosts wins. */
/* Write /etc/hosts and resolv.conf, and bring up lo and eth0 in a child
 * while agentd goes on; net_finish waits for it.  A failure ends the
 * sandbox. */
void net_start(const struct msb_setup_msg *su);
void net_finish(void);

/* ---- procs.c ---- */
/* Run processes for the host until SHUTDOWN; first (may be NULL) is a
 * message already taken from the reader, handled before anything else. */
__attribute__((noreturn)) void procs_run(const struct msb_setup_msg *su, struct msb_msg *first);

/* ---- tarcp.c ---- */
/* A routine named by argv[0] ("cp-out", "cp-in"), in a child of agentd
 * whose 0, 1, 2 are the process's streams: its exit status. */
int tarcp_main(int argc, char **argv);

/* ---- fsops.c ---- */
/* A file routine named by argv[0] ("fs-stat", ...: proto.h lists them), as
 * tarcp_main's: its exit status. */
int fsops_main(int argc, char **argv);
