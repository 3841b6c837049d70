/*
 * sw-open-probe: opens a file through one named open syscall, for sealwatch's immutability
 * tests. The file sensor reads each open syscall's flags and mode from a different argument
 * register at its exit, so the tests open through every one of them (libc and busybox would use
 * only one). Part of the test image (/bin/sw-open-probe). Built static by tests/src/image.rs:
 * `gcc -static -O2 -o sw-open-probe open_probe.c`.
 *
 *   sw-open-probe open|openat|openat2 PATH FLAGS MODE   FLAGS and MODE in octal (e.g. 2001 0)
 *   sw-open-probe creat PATH MODE                       creat(2): O_CREAT|O_WRONLY|O_TRUNC
 *
 * Prints `ok` or `error: <strerror>` and exits 0 or 1; bad usage exits 111.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

/* struct open_how of <linux/openat2.h>, spelled out: older libc headers lack it. */
struct sw_open_how {
    uint64_t flags;
    uint64_t mode;
    uint64_t resolve;
};

static int usage(void) {
    fprintf(stderr, "usage: sw-open-probe open|openat|openat2 PATH FLAGS MODE | creat PATH MODE\n");
    return 111;
}

static long octal(const char *text) {
    char *end;
    long value = strtol(text, &end, 8);
    return *text && !*end ? value : -1;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        return usage();
    }
    const char *call = argv[1], *path = argv[2];
    long fd;
    if (strcmp(call, "creat") == 0 && argc == 4) {
        long mode = octal(argv[3]);
        if (mode < 0) {
            return usage();
        }
        fd = syscall(SYS_creat, path, (mode_t)mode);
    } else if (argc == 5) {
        long flags = octal(argv[3]), mode = octal(argv[4]);
        if (flags < 0 || mode < 0) {
            return usage();
        }
        if (strcmp(call, "open") == 0) {
            fd = syscall(SYS_open, path, (int)flags, (mode_t)mode);
        } else if (strcmp(call, "openat") == 0) {
            fd = syscall(SYS_openat, AT_FDCWD, path, (int)flags, (mode_t)mode);
        } else if (strcmp(call, "openat2") == 0) {
            struct sw_open_how how = {.flags = (uint64_t)flags, .mode = (uint64_t)mode};
            fd = syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
        } else {
            return usage();
        }
    } else {
        return usage();
    }
    if (fd < 0) {
        printf("error: %s\n", strerror(errno));
        return 1;
    }
    close((int)fd);
    printf("ok\n");
    return 0;
}
