/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A container process's confinement inside its VM: process.capabilities,
 * noNewPrivileges and linux.seccomp, turned into what agentd applies
 * before exec (msb_confine: capability masks and a classic BPF program).
 * The filter is compiled here, on the host, with libseccomp, as runc and
 * crun do; the guest only loads it.  The guest's architecture is the
 * host's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/util.h"
#include "runtime.h"

/* Linux's capability numbers (include/uapi/linux/capability.h). */
static const char *const cap_names[] = {
        "CAP_CHOWN",           "CAP_DAC_OVERRIDE",   "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
        "CAP_FSETID",          "CAP_KILL",           "CAP_SETGID",          "CAP_SETUID",
        "CAP_SETPCAP",         "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN",       "CAP_NET_RAW",        "CAP_IPC_LOCK",        "CAP_IPC_OWNER",
        "CAP_SYS_MODULE",      "CAP_SYS_RAWIO",      "CAP_SYS_CHROOT",      "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT",       "CAP_SYS_ADMIN",      "CAP_SYS_BOOT",        "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE",    "CAP_SYS_TIME",       "CAP_SYS_TTY_CONFIG",  "CAP_MKNOD",
        "CAP_LEASE",           "CAP_AUDIT_WRITE",    "CAP_AUDIT_CONTROL",   "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE",    "CAP_MAC_ADMIN",      "CAP_SYSLOG",          "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND",   "CAP_AUDIT_READ",     "CAP_PERFMON",         "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
};

int rt_cap_number(const char *name)
{
        for (size_t i = 0; i < ARRAY_SIZE(cap_names); i++)
                if (!strcasecmp(name, cap_names[i]) || !strcasecmp(name, cap_names[i] + 4))
                        return (int)i;
        return -1;
}

/* process.capabilities: each set a list of names.  An unknown name is
 * left out with a warning, as runc does (a newer profile, an older
 * kernel); a set that is not a list of strings is refused. */
int rt_caps_parse(json_t *caps, uint64_t out[MSB_CAP_SETS_RT], struct msb_error *err)
{
        static const char *const sets[] = {"bounding", "effective", "permitted", "inheritable", "ambient"};
        memset(out, 0, sizeof(uint64_t) * MSB_CAP_SETS_RT);
        if (!json_is_object(caps)) {
                return msb_err(err, EINVAL, "process.capabilities: expected an object of lists");
        }
        for (size_t s = 0; s < ARRAY_SIZE(sets); s++) {
                json_t *a = json_object_get(caps, sets[s]), *v;
                size_t i;
                if (a && !json_is_array(a)) {
                        return msb_err(err, EINVAL, "process.capabilities.%s: expected a list of names", sets[s]);
                }
                json_array_foreach(a, i, v)
                {
                        const char *name = json_string_value(v);
                        if (!name) {
                                return msb_err(err, EINVAL, "process.capabilities.%s[%zu]: expected a name", sets[s],
                                               i);
                        }
                        int c = rt_cap_number(name);
                        if (c < 0)
                                rt_warn("process.capabilities.%s: unknown capability %.64s left out", sets[s], name);
                        else
                                out[s] |= 1ull << c;
                }
        }
        return 0;
}

static int action_parse(const char *a, json_t *errno_ret, uint32_t *ret)
{
        if (errno_ret && (!json_is_integer(errno_ret) || json_integer_value(errno_ret) < 0 ||
                          json_integer_value(errno_ret) > 4095))
                return -EINVAL;
        uint32_t e = errno_ret ? (uint32_t)json_integer_value(errno_ret) : EPERM;
        if (!strcmp(a, "SCMP_ACT_ALLOW"))
                *ret = SCMP_ACT_ALLOW;
        else if (!strcmp(a, "SCMP_ACT_ERRNO"))
                *ret = SCMP_ACT_ERRNO(e);
        else if (!strcmp(a, "SCMP_ACT_KILL") || !strcmp(a, "SCMP_ACT_KILL_THREAD"))
                *ret = SCMP_ACT_KILL_THREAD;
        else if (!strcmp(a, "SCMP_ACT_KILL_PROCESS"))
                *ret = SCMP_ACT_KILL_PROCESS;
        else if (!strcmp(a, "SCMP_ACT_TRAP"))
                *ret = SCMP_ACT_TRAP;
        else if (!strcmp(a, "SCMP_ACT_TRACE"))
                *ret = SCMP_ACT_TRACE(e);
        else if (!strcmp(a, "SCMP_ACT_LOG"))
                *ret = SCMP_ACT_LOG;
        else
                return -EINVAL;
        return 0;
}

static int op_parse(const char *op, enum scmp_compare *ret)
{
        static const struct {
                const char *name;
                enum scmp_compare op;
        } ops[] = {{"SCMP_CMP_NE", SCMP_CMP_NE}, {"SCMP_CMP_LT", SCMP_CMP_LT},
                   {"SCMP_CMP_LE", SCMP_CMP_LE}, {"SCMP_CMP_EQ", SCMP_CMP_EQ},
                   {"SCMP_CMP_GE", SCMP_CMP_GE}, {"SCMP_CMP_GT", SCMP_CMP_GT},
                   {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ}};
        for (size_t i = 0; i < ARRAY_SIZE(ops); i++)
                if (op && !strcmp(op, ops[i].name)) {
                        *ret = ops[i].op;
                        return 0;
                }
        return -EINVAL;
}

#define SECCOMP_MAX_RULES 4096
#define SECCOMP_MAX_ARGS 6

/* One entry of linux.seccomp.syscalls: its action for each name, with
 * the argument conditions.  0, or -EINVAL with err filled. */
static int add_rule(scmp_filter_ctx sc, json_t *r, size_t idx, uint32_t def, struct msb_error *err)
{
        const char *act = json_string_value(json_object_get(r, "action"));
        uint32_t action;
        if (!act || !strcmp(act, "SCMP_ACT_NOTIFY"))
                return msb_err(err, EINVAL,
                               "linux.seccomp.syscalls[%zu].action: %s (a notifying filter needs a listener on the "
                               "host, which a VM's processes cannot reach)",
                               idx, act ? act : "missing");
        if (action_parse(act, json_object_get(r, "errnoRet"), &action) < 0)
                return msb_err(err, EINVAL,
                               "linux.seccomp.syscalls[%zu].action: unknown action %.64s or a bad errnoRet",
                               idx, act);
        json_t *args = json_object_get(r, "args"), *a;
        struct scmp_arg_cmp cmp[SECCOMP_MAX_ARGS];
        size_t i, nargs = 0;
        if (args && (!json_is_array(args) || json_array_size(args) > SECCOMP_MAX_ARGS))
                return msb_err(err, EINVAL, "linux.seccomp.syscalls[%zu].args: at most %d conditions", idx,
                               SECCOMP_MAX_ARGS);
        json_array_foreach(args, i, a)
        {
                enum scmp_compare op;
                json_t *ix = json_object_get(a, "index"), *v1 = json_object_get(a, "value"),
                       *v2 = json_object_get(a, "valueTwo");
                json_int_t index = json_integer_value(ix);
                /* a missing or mistyped number would read as 0, and a
                 * condition on 0 can match everything */
                if (op_parse(json_string_value(json_object_get(a, "op")), &op) < 0 || !json_is_integer(ix) ||
                    index < 0 || index > 5 || !json_is_integer(v1) || (v2 && !json_is_integer(v2)))
                        return msb_err(err, EINVAL,
                                       "linux.seccomp.syscalls[%zu].args[%zu]: expected an index 0-5, an op and "
                                       "integer values",
                                       idx, i);
                cmp[nargs++] = (struct scmp_arg_cmp){
                        .arg = (unsigned)index,
                        .op = op,
                        .datum_a = (scmp_datum_t)json_integer_value(json_object_get(a, "value")),
                        .datum_b = (scmp_datum_t)json_integer_value(json_object_get(a, "valueTwo")),
                };
        }
        /* the default already; libseccomp refuses such a rule */
        if (action == def)
                return 0;
        json_t *names = json_object_get(r, "names"), *nm;
        if (!json_is_array(names))
                return msb_err(err, EINVAL, "linux.seccomp.syscalls[%zu].names: expected a list", idx);
        json_array_foreach(names, i, nm)
        {
                const char *name = json_string_value(nm);
                if (!name)
                        return msb_err(err, EINVAL, "linux.seccomp.syscalls[%zu].names[%zu]: expected a name", idx, i);
                int nr = seccomp_syscall_resolve_name(name);
                /* a name this architecture or libseccomp does not know:
                 * nothing to filter, as runc */
                if (nr == __NR_SCMP_ERROR)
                        continue;
                int e = seccomp_rule_add_array(sc, action, nr, (unsigned)nargs, cmp);
                if (e < 0)
                        return msb_err_errno(err, -e, "linux.seccomp.syscalls[%zu]: %s", idx, name), -EINVAL;
        }
        return 0;
}

int rt_seccomp_compile(json_t *s, void **ret_bpf, size_t *ret_len, struct msb_error *err)
{
        *ret_bpf = NULL;
        *ret_len = 0;
        const char *defa = json_string_value(json_object_get(s, "defaultAction"));
        uint32_t def;
        if (!defa || action_parse(defa, json_object_get(s, "defaultErrnoRet"), &def) < 0)
                return msb_err(err, EINVAL, "linux.seccomp.defaultAction: %s",
                               defa ? "unknown action or a bad defaultErrnoRet" : "missing");
        if (json_string_value(json_object_get(s, "listenerPath")))
                return msb_err(err, EINVAL,
                               "linux.seccomp.listenerPath: a VM's processes cannot reach a host listener");
        json_t *calls = json_object_get(s, "syscalls");
        if (calls && (!json_is_array(calls) || json_array_size(calls) > SECCOMP_MAX_RULES))
                return msb_err(err, EINVAL, "linux.seccomp.syscalls: expected a list of at most %d", SECCOMP_MAX_RULES);
        scmp_filter_ctx sc = seccomp_init(def);
        if (!sc)
                return msb_err(err, ENOMEM, "linux.seccomp: cannot start a filter");
        /* exported, never loaded here */
        seccomp_attr_set(sc, SCMP_FLTATR_CTL_NNP, 0);
        int r = 0;
        json_t *a;
        size_t i;
        json_array_foreach(json_object_get(s, "architectures"), i, a)
        {
                const char *name = json_string_value(a);
                if (!name || strncmp(name, "SCMP_ARCH_", 10))
                        continue;
                _cleanup_free_ char *lower = xstrdup(name + 10);
                for (char *c = lower; *c; c++)
                        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
                uint32_t arch = seccomp_arch_resolve_name(lower);
                /* only what this host (the guest's architecture) runs */
                if (arch && arch != seccomp_arch_native()) {
                        int e = seccomp_arch_add(sc, arch);
                        if (e < 0 && e != -EEXIST)
                                rt_debug("%s", errno_msg(-e, "linux.seccomp.architectures: %s left out", name).s);
                }
        }
        json_array_foreach(calls, i, a)
        {
                if ((r = add_rule(sc, a, i, def, err)) < 0)
                        break;
        }
        int fd = r < 0 ? -1 : memfd_create("seccomp", MFD_CLOEXEC);
        if (r >= 0 && (fd < 0 || (r = seccomp_export_bpf(sc, fd)) < 0)) {
                msb_err_errno(err, fd < 0 ? errno : -r, "linux.seccomp: cannot compile the filter");
                r = -EIO;
        }
        seccomp_release(sc);
        if (r < 0) {
                if (fd >= 0)
                        close(fd);
                return r;
        }
        off_t len = lseek(fd, 0, SEEK_END);
        if (len <= 0 || len % 8 || len / 8 > (off_t)MSB_SECCOMP_MAX_RT) {
                close(fd);
                return msb_err(err, E2BIG, "linux.seccomp: the filter is %lld instructions; at most %d",
                               (long long)(len / 8), MSB_SECCOMP_MAX_RT);
        }
        uint8_t *bpf = xmalloc((size_t)len);
        ssize_t got = pread(fd, bpf, (size_t)len, 0);
        close(fd);
        if (got != len) {
                free(bpf);
                return msb_err(err, EIO, "linux.seccomp: cannot read the compiled filter");
        }
        *ret_bpf = bpf;
        *ret_len = (size_t)len / 8;
        return 0;
}

int rt_confine_from(json_t *caps, bool no_new_privs, bool root, json_t *seccomp, struct msb_confine *c, void **bpf,
                    bool *any, struct msb_error *err)
{
        memset(c, 0, sizeof(*c));
        *bpf = NULL;
        c->no_new_privs = no_new_privs;
        *any = caps || no_new_privs || seccomp;
        if (!*any)
                return 0;
        if (caps) {
                int r = rt_caps_parse(caps, c->caps, err);
                if (r < 0)
                        return r;
        } else {
                /* no capabilities entry: root keeps them all, any other
                 * uid has none, as without confinement */
                uint64_t all = (1ull << ARRAY_SIZE(cap_names)) - 1;
                c->caps[0] = all;
                if (root)
                        c->caps[1] = c->caps[2] = all;
        }
        if (seccomp) {
                int r = rt_seccomp_compile(seccomp, bpf, &c->seccomp_len, err);
                if (r < 0)
                        return r;
                c->seccomp = *bpf;
        }
        return 0;
}
