/*
 * sw-open-probe: opens a file through one named open syscall, for sealwatch's immutability
 * tests. The file sensor reads each open syscall's flags and mode from a different argument
 * register at its exit, so the tests open through every one of them (libc and busybox would use
 * only one). Part of the test image (/bin/sw-open-probe). Built static by tests/src/image.rs:
 * `gcc -static -O2 -o sw-open-probe open_probe.c`.
 *
 *   sw-open-probe open|openat|openat2 PATH FLAGS MODE   FLAGS and MODE in octal (e.g. 2001 0)
 *   sw-open-probe creat PATH MODE                       creat(2): O_CREAT|O_WRONLY|O_TRUNC
 *   sw-open-probe openat2-race PATH N                   N openat2 calls while a second thread
 *                                                       flips their open_how between O_WRONLY|O_APPEND
 *                                                       and O_RDONLY; prints `writes W` (the opens that
 *                                                       got a writable descriptor)
 *   sw-open-probe unlink-flood PATH SECONDS             unlink(PATH) (which fails) as fast as it can
 *                                                       for SECONDS; prints `calls N` (the flood
 *                                                       test: a container filling the file ring)
 *
 * Prints `ok` or `error: <strerror>` and exits 0 or 1; bad usage exits 111.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
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
    fprintf(stderr, "usage: sw-open-probe open|openat|openat2 PATH FLAGS MODE | creat PATH MODE"
                    " | openat2-race PATH N | unlink-flood PATH SECONDS\n");
    return 111;
}

/* The open_how the race mode's two threads share. */
static volatile struct sw_open_how raced;
static volatile int race_over;

static void *flip_flags(void *unused) {
    (void)unused;
    while (!race_over) {
        raced.flags = O_WRONLY | O_APPEND;
        raced.flags = O_RDONLY;
    }
    return NULL;
}

/* openat2 on `path` `n` times while flip_flags rewrites the flags: the kernel copies them at some
 * point of each call, so some opens write and some read. */
static int race(const char *path, long n) {
    pthread_t flipper;
    if (pthread_create(&flipper, NULL, flip_flags, NULL) != 0) {
        printf("error: pthread_create\n");
        return 1;
    }
    long writes = 0;
    for (long i = 0; i < n; i++) {
        long fd = syscall(SYS_openat2, AT_FDCWD, path, (void *)&raced, sizeof raced);
        if (fd < 0) {
            continue;
        }
        if ((fcntl((int)fd, F_GETFL) & O_ACCMODE) == O_WRONLY) {
            writes++;
        }
        close((int)fd);
    }
    race_over = 1;
    pthread_join(flipper, NULL);
    printf("writes %ld\n", writes);
    return 0;
}

static int unlink_flood(const char *path, long seconds) {
    time_t end = time(NULL) + seconds;
    long calls = 0;
    while (time(NULL) < end) {
        for (int i = 0; i < 1000; i++) {
            unlink(path);
        }
        calls += 1000;
    }
    printf("calls %ld\n", calls);
    return 0;
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
    if (strcmp(call, "unlink-flood") == 0 && argc == 4) {
        long seconds = strtol(argv[3], NULL, 10);
        return seconds > 0 ? unlink_flood(path, seconds) : usage();
    }
    if (strcmp(call, "openat2-race") == 0 && argc == 4) {
        long n = strtol(argv[3], NULL, 10);
        return n > 0 ? race(path, n) : usage();
    }
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
