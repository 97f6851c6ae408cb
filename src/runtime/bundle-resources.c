/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.json's linux.resources and the VM's size: CPU and memory limits
 * (or the annotations that give them) to the VM's vCPUs and memory, the
 * rest to the container's cgroup in the guest (docs/oci-runtime.md).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <jansson.h>
#include <linux/openat2.h>

#include "common/util.h"
#include "bundle.h"
#include "runtime.h"

int rt_size_from_resources(int64_t quota, uint64_t period, const char *cpus, int64_t mem_limit, unsigned *ret_cpus,
                           unsigned *ret_mib, char *errbuf, size_t errn)
{
        unsigned n = 0;
        if (period == 0)
                period = 100000; /* the kernel's default, as runc's */
        if (quota > 0) {
                /* past msb's most, said so by the caller: no wrap to a small count */
                uint64_t q = ((uint64_t)quota + period - 1) / period;
                n = q > MSB_MAX_CPUS ? MSB_MAX_CPUS + 1 : (unsigned)q;
        }
        else if (cpus && *cpus) {
                /* "0-3,6": count the CPUs */
                const char *p = cpus;
                while (*p) {
                        char *end;
                        unsigned long a = strtoul(p, &end, 10), z = a;
                        if (end == p)
                                goto bad;
                        if (*end == '-') {
                                p = end + 1;
                                z = strtoul(p, &end, 10);
                                if (end == p || z < a)
                                        goto bad;
                        }
                        if (z - a + 1 > MSB_MAX_CPUS + 1 || n > MSB_MAX_CPUS)
                                n = MSB_MAX_CPUS + 1;
                        else
                                n += (unsigned)(z - a + 1);
                        p = end;
                        if (*p == ',')
                                p++;
                        else if (*p)
                                goto bad;
                }
        }
        unsigned mib = 0;
        if (mem_limit > 0) {
                uint64_t m = ((uint64_t)mem_limit + (1u << 20) - 1) >> 20;
                if (m < MSB_MIN_MEMORY_MIB + RT_HOST_RESERVE_MIB) {
                        snprintf(errbuf, errn,
                                 "%llu MiB cannot hold a VM: at least %u MiB (%u for "
                                 "the guest, %u for QEMU and msb's helpers on the host)",
                                 (unsigned long long)m, MSB_MIN_MEMORY_MIB + RT_HOST_RESERVE_MIB, MSB_MIN_MEMORY_MIB,
                                 RT_HOST_RESERVE_MIB);
                        return -ERANGE;
                }
                m -= RT_HOST_RESERVE_MIB;
                mib = m > UINT32_MAX ? UINT32_MAX : (unsigned)m;
        }
        *ret_cpus = n;
        *ret_mib = mib;
        return 0;
bad:
        snprintf(errbuf, errn, "'%s': expected a list such as 0-3,6", cpus);
        return -EINVAL;
}

/* An integer field of linux.resources: absent is 0; -1 means unlimited
 * where allowed; anything else below 0, or not an integer, is refused. */
static int res_int(json_t *o, const char *key, const char *field, bool minus_one, int64_t *ret)
{
        json_t *v = json_object_get(o, key);
        *ret = 0;
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_integer(v) || json_integer_value(v) < (minus_one ? -1 : 0)) {
                char why[96];
                snprintf(why, sizeof(why), "expected %s", minus_one ? "an integer, or -1 for no limit" : "a positive integer");
                return refuse(field, why);
        }
        *ret = json_integer_value(v);
        return 0;
}

static int res_str(json_t *o, const char *key, const char *field, char **ret)
{
        json_t *v = json_object_get(o, key);
        *ret = NULL;
        if (!v || json_is_null(v) || (json_is_string(v) && !*json_string_value(v)))
                return 0;
        if (!json_is_string(v) || json_string_length(v) > 1024 ||
            strspn(json_string_value(v), "0123456789,-") != json_string_length(v))
                return refuse(field, "expected a list such as 0-3,6");
        *ret = xstrdup(json_string_value(v));
        return 0;
}

/* linux.resources.unified: cgroup v2 files, "controller.name" keys only */
static int res_unified(struct rt_resources *r, json_t *u)
{
        const char *k;
        json_t *v;
        json_object_foreach(u, k, v)
        {
                char field[160];
                snprintf(field, sizeof(field), "linux.resources.unified.%.100s", k);
                /* files that tune this cgroup alone: not the typed limits'
                 * (memory.max, cpu.max, pids.max, cpuset.*), which the checks
                 * above bound, nor cpuset partitions, which take CPUs from
                 * the rest of the host */
                static const char *const ok[] = {"memory.high", "memory.low",      "memory.min",  "memory.swap.high",
                                                 "memory.oom.group", "cpu.weight", "cpu.weight.nice",
                                                 "cpu.max.burst", "cpu.idle",      "io.weight",   "io.max",
                                                 "io.latency",   "io.bfq.weight"};
                bool known = false;
                for (size_t i = 0; i < ARRAY_SIZE(ok) && !known; i++)
                        known = !strcmp(k, ok[i]);
                if (!known)
                        return refuse(field, "not among the cgroup v2 files msb-runtime writes (memory.high, "
                                             "memory.low, memory.min, memory.swap.high, memory.oom.group, "
                                             "cpu.weight, cpu.weight.nice, cpu.max.burst, cpu.idle, io.weight, "
                                             "io.max, io.latency, io.bfq.weight); the typed linux.resources "
                                             "fields set the others");
                if (!json_is_string(v) || json_string_length(v) > 4096 || strchr(json_string_value(v), '\n'))
                        return refuse(field, "expected a one-line string value");
                r->unified = xrealloc(r->unified, (r->n_unified + 1) * 2 * sizeof(char *));
                r->unified[2 * r->n_unified] = xstrdup(k);
                r->unified[2 * r->n_unified + 1] = xstrdup(json_string_value(v));
                r->n_unified++;
        }
        return 0;
}

/* The host cgroup's share of linux.resources. */
static int parse_resources(struct rt_resources *r, json_t *res)
{
        json_t *cpu = json_object_get(res, "cpu"), *mem = json_object_get(res, "memory");
        int64_t v;
        int e;
        if ((e = res_int(cpu, "quota", "linux.resources.cpu.quota", true, &r->cpu_quota)) < 0 ||
            (e = res_int(cpu, "period", "linux.resources.cpu.period", false, &v)) < 0)
                return e;
        r->cpu_period = (uint64_t)v;
        if ((e = res_int(cpu, "shares", "linux.resources.cpu.shares", false, &v)) < 0)
                return e;
        r->cpu_shares = (uint64_t)v;
        if ((e = res_str(cpu, "cpus", "linux.resources.cpu.cpus", &r->cpus)) < 0 ||
            (e = res_str(cpu, "mems", "linux.resources.cpu.mems", &r->mems)) < 0 ||
            (e = res_int(mem, "limit", "linux.resources.memory.limit", true, &r->mem_limit)) < 0 ||
            (e = res_int(mem, "swap", "linux.resources.memory.swap", true, &r->mem_swap)) < 0 ||
            (e = res_int(mem, "reservation", "linux.resources.memory.reservation", true, &r->mem_reservation)) < 0 ||
            (e = res_int(json_object_get(res, "pids"), "limit", "linux.resources.pids.limit", true, &r->pids_limit)) <
                    0)
                return e;
        /* runc's pids limit: 0 is unset, any negative value no limit */
        json_t *u = json_object_get(res, "unified");
        if (u && !json_is_object(u))
                return refuse("linux.resources.unified", "expected an object");
        return res_unified(r, u);
}

/* An annotation's size for the VM: it may lower what the resources (or
 * msb's default) give, and raise it only where msb-runtime's config
 * says so (as Kata's enable_annotations). */
static int annotation_size(const char *name, const char *given, unsigned bound, const char *from, bool *cfg_loaded,
                           struct rt_config *cfg, unsigned *io)
{
        char field[64], why[512];
        snprintf(field, sizeof(field), "annotations.%s", name);
        bool cpus = !strcmp(name, "io.msb.cpus");
        unsigned v;
        if (cpus) {
                char *end;
                unsigned long l = strtoul(given, &end, 10);
                if (end == given || *end || given[0] == '-' || l == 0 || l > MSB_MAX_CPUS)
                        return refuse(field, "expected a number of vCPUs, 1 to 64");
                v = (unsigned)l;
        } else {
                uint64_t bytes;
                if (msb_parse_size(given, &bytes) < 0 || (bytes >> 20) < MSB_MIN_MEMORY_MIB ||
                    (bytes >> 20) > MSB_MAX_MEMORY_MIB)
                        return refuse(field, "expected a size such as 512M or 2G, 128M to 64G");
                v = (unsigned)(bytes >> 20);
        }
        if (v > bound) {
                if (!*cfg_loaded) {
                        if (rt_config_load(cfg) < 0)
                                return -EINVAL;
                        *cfg_loaded = true;
                }
                if (!(cpus ? cfg->raise_cpus : cfg->raise_memory)) {
                        snprintf(why, sizeof(why),
                                 "%u%s is more than %s gives (%u%s); an annotation may only lower the VM's size, "
                                 "unless %s has 'annotations-may-raise %s'",
                                 v, cpus ? " vCPUs" : " MiB", from, bound, cpus ? "" : " MiB", rt_config_path(), name);
                        return refuse(field, why);
                }
        }
        *io = v;
        return 0;
}

int map_resources(struct rt_bundle *b, json_t *res, json_t *annotations)
{
        size_t i;
        json_t *d;
        json_array_foreach(json_object_get(res, "devices"), i, d)
        {
                int r = check_device_rule(d, i);
                if (r < 0)
                        return r;
        }
        int e = parse_resources(&b->res, res);
        if (e < 0)
                return e;
        char why[256];
        unsigned cpus, mib;
        e = rt_size_from_resources(b->res.cpu_quota, b->res.cpu_period, b->res.cpus, b->res.mem_limit, &cpus, &mib,
                                   why, sizeof(why));
        if (e < 0)
                return refuse(e == -ERANGE ? "linux.resources.memory.limit" : "linux.resources.cpu.cpus", why);
        const char *ac = jstr(annotations, "io.msb.cpus"), *am = jstr(annotations, "io.msb.memory");
        bool loaded = false;
        struct rt_config cfg;
        if (ac && (e = annotation_size("io.msb.cpus", ac, cpus ? cpus : MSB_DEFAULT_CPUS,
                                       cpus ? "linux.resources.cpu" : "msb's default", &loaded, &cfg, &cpus)) < 0)
                return e;
        if (am && (e = annotation_size("io.msb.memory", am, mib ? mib : MSB_DEFAULT_MEMORY_MIB,
                                       mib ? "linux.resources.memory.limit" : "msb's default", &loaded, &cfg, &mib)) <
                          0)
                return e;
        if (cpus && msb_run_opts_set_cpus(b->o, cpus) < 0) {
                snprintf(why, sizeof(why), "%u vCPUs is more than msb gives a VM (%u)", cpus, MSB_MAX_CPUS);
                return refuse(ac ? "annotations.io.msb.cpus" : "linux.resources.cpu", why);
        }
        if (mib && msb_run_opts_set_memory_mib(b->o, mib) < 0) {
                snprintf(why, sizeof(why), "%u MiB of guest memory is more than msb gives a VM", mib);
                return refuse(am ? "annotations.io.msb.memory" : "linux.resources.memory.limit", why);
        }
        unsigned vcpus = cpus ? cpus : MSB_DEFAULT_CPUS;
        if (b->res.pids_limit > 0 && (uint64_t)b->res.pids_limit < RT_PIDS_MIN(vcpus)) {
                snprintf(why, sizeof(why),
                         "%lld is too few for the VM's host processes and threads (QEMU's, msb's helpers'): at "
                         "least %u; the guest's own processes are bounded by its memory",
                         (long long)b->res.pids_limit, RT_PIDS_MIN(vcpus));
                return refuse("linux.resources.pids.limit", why);
        }
        /* blockIO, hugepageLimits, network, rdma: not applied
         * (docs/oci-runtime.md) */
        return 0;
}
