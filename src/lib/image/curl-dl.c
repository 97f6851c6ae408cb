/* SPDX-License-Identifier: Apache-2.0 */
/* libcurl, loaded with dlopen the first time a registry is contacted (curl-dl.h). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>

#include "curl-dl.h"

CURLcode (*sym_curl_global_init)(long flags);
CURL *(*sym_curl_easy_init)(void);
void (*sym_curl_easy_cleanup)(CURL *c);
void (*sym_curl_easy_reset)(CURL *c);
CURLcode (*sym_curl_easy_setopt)(CURL *c, CURLoption option, ...);
CURLcode (*sym_curl_easy_getinfo)(CURL *c, CURLINFO info, ...);
CURLcode (*sym_curl_easy_perform)(CURL *c);
const char *(*sym_curl_easy_strerror)(CURLcode code);
char *(*sym_curl_easy_escape)(CURL *c, const char *s, int len);
void (*sym_curl_free)(void *p);
struct curl_slist *(*sym_curl_slist_append)(struct curl_slist *l, const char *s);
void (*sym_curl_slist_free_all)(struct curl_slist *l);

int curl_dl_load(const char **ret_why)
{
        static int state; /* 0 not tried, 1 loaded, <0 failed */
        static const char *why;
        /* a server's threads may pull at once: one loads, the others wait for it */
        static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
        pthread_mutex_lock(&lock);
        if (state == 0) {
                /* the soname the package (libcurl4) ships; the -dev symlink
                 * libcurl.so need not exist on a user's machine */
                void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
                if (!h) {
                        why = "libcurl.so.4 cannot be loaded (apt-get install libcurl4)";
                        state = -ENOENT;
                } else {
                        static const struct {
                                const char *name;
                                void **ptr;
                        } syms[] = {
#define S(n) {#n, (void **)&sym_##n}
                                S(curl_global_init), S(curl_easy_init),     S(curl_easy_cleanup),
                                S(curl_easy_reset),  S(curl_easy_setopt),   S(curl_easy_getinfo),
                                S(curl_easy_perform), S(curl_easy_strerror), S(curl_easy_escape),
                                S(curl_free),        S(curl_slist_append),  S(curl_slist_free_all),
#undef S
                        };
                        state = 1;
                        for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
                                *syms[i].ptr = dlsym(h, syms[i].name);
                                if (!*syms[i].ptr) {
                                        why = "libcurl.so.4 lacks a function msb needs (libcurl older than 7.85?)";
                                        state = -ENOSYS;
                                        dlclose(h);
                                        break;
                                }
                        }
                        if (state == 1 && sym_curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                                why = "libcurl failed to initialize";
                                state = -EIO;
                        }
                }
        }
        int r = state;
        pthread_mutex_unlock(&lock);
        if (r < 0 && ret_why)
                *ret_why = why;
        return r < 0 ? r : 0;
}
