/*
 * sw-exec-helper: runs a copy of /bin/busybox (as `true`) that is not a file of the image, for
 * sealwatch's drift-exec tests. It is part of the test image (/bin/sw-exec-helper, lower layer),
 * so only the program it starts is drift. Built static by tests/src/image.rs:
 * `gcc -static -O2 -o sw-exec-helper memfd_exec.c`.
 *
 *   sw-exec-helper memfd          copy busybox into a memfd and execveat(fd, "", AT_EMPTY_PATH)
 *   sw-exec-helper deleted PATH   copy busybox to PATH (mode 0700), open it, unlink it, then
 *                                 execveat the open descriptor
 *
 * The program started is `true` (busybox picks the applet from argv[0]); its exit status is the
 * helper's. Any failure before the exec prints a reason and exits 111.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif

static void die(const char *what) {
    fprintf(stderr, "sw-exec-helper: %s: %s\n", what, strerror(errno));
    exit(111);
}

static void copy_busybox(int out) {
    int in = open("/bin/busybox", O_RDONLY | O_CLOEXEC);
    if (in < 0)
        die("open /bin/busybox");
    char buf[65536];
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0)
            die("read /bin/busybox");
        if (n == 0)
            break;
        for (ssize_t done = 0; done < n;) {
            ssize_t w = write(out, buf + done, (size_t)(n - done));
            if (w < 0)
                die("write copy");
            done += w;
        }
    }
    close(in);
}

static void exec_fd(int fd) {
    char *argv[] = {"true", NULL};
    char *envp[] = {"PATH=/bin", NULL};
    syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
    die("execveat");
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "memfd") == 0) {
        int fd = (int)syscall(SYS_memfd_create, "sw-drift", 0u);
        if (fd < 0)
            die("memfd_create");
        copy_busybox(fd);
        exec_fd(fd);
    }
    if (argc == 3 && strcmp(argv[1], "deleted") == 0) {
        int out = open(argv[2], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
        if (out < 0)
            die("create the copy");
        copy_busybox(out);
        if (close(out) != 0)
            die("close the copy");
        int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            die("open the copy");
        if (unlink(argv[2]) != 0)
            die("unlink the copy");
        exec_fd(fd);
    }
    fprintf(stderr, "usage: sw-exec-helper memfd | sw-exec-helper deleted PATH\n");
    return 2;
}
