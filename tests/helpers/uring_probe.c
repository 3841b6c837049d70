/*
 * sw-uring-probe: one file or network operation submitted through io_uring (no syscall of its
 * kind is made), for sealwatch's attacker tests. Raw io_uring_setup/io_uring_enter, no liburing.
 * Part of the test image (/bin/sw-uring-probe). Built static by tests/src/image.rs.
 *
 *   sw-uring-probe append PATH TEXT     IORING_OP_OPENAT (O_WRONLY|O_APPEND), then write(2) TEXT
 *   sw-uring-probe fixed-append PATH TEXT        the same open into fixed-file slot 2, and
 *                                                IORING_OP_WRITE of TEXT through the slot
 *   sw-uring-probe fixed-alloc-append PATH TEXT  the same into a slot the kernel allocates
 *   sw-uring-probe unlink PATH          IORING_OP_UNLINKAT
 *   sw-uring-probe rename OLD NEW       IORING_OP_RENAMEAT
 *   sw-uring-probe link OLD NEW         IORING_OP_LINKAT
 *   sw-uring-probe connect ADDR PORT    IORING_OP_CONNECT on a TCP socket (IPv4)
 *
 * Prints `ok` or `error: <strerror>` and exits 0 or 1; bad usage exits 111.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static int usage(void) {
    fprintf(stderr, "usage: sw-uring-probe append PATH TEXT | fixed-append PATH TEXT"
                    " | fixed-alloc-append PATH TEXT | unlink PATH | rename OLD NEW"
                    " | link OLD NEW | connect ADDR PORT\n");
    return 111;
}

/* One ring, mapped. */
struct ring {
    int fd;
    struct io_uring_params p;
    char *sq;
    char *cq;
    struct io_uring_sqe *sqes;
};

/* Sets up `r` (1 entry); -errno on failure. */
static int ring_open(struct ring *r) {
    memset(r, 0, sizeof *r);
    r->fd = (int)syscall(__NR_io_uring_setup, 1, &r->p);
    if (r->fd < 0) {
        return -errno;
    }
    struct io_uring_params *p = &r->p;
    size_t sq_len = p->sq_off.array + p->sq_entries * sizeof(unsigned);
    size_t cq_len = p->cq_off.cqes + p->cq_entries * sizeof(struct io_uring_cqe);
    r->sq = mmap(NULL, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
                 IORING_OFF_SQ_RING);
    r->cq = mmap(NULL, cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
                 IORING_OFF_CQ_RING);
    r->sqes = mmap(NULL, p->sq_entries * sizeof *r->sqes, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
    if (r->sq == MAP_FAILED || r->cq == MAP_FAILED || r->sqes == MAP_FAILED) {
        return -errno;
    }
    return 0;
}

/* Submits `sqe` on `r` and returns its completion's result (-errno on failure). */
static int ring_submit(struct ring *r, const struct io_uring_sqe *sqe) {
    unsigned *tail = (unsigned *)(r->sq + r->p.sq_off.tail);
    unsigned mask = *(unsigned *)(r->sq + r->p.sq_off.ring_mask);
    unsigned index = *tail & mask;
    r->sqes[index] = *sqe;
    ((unsigned *)(r->sq + r->p.sq_off.array))[index] = index;
    __atomic_store_n(tail, *tail + 1, __ATOMIC_RELEASE);
    if (syscall(__NR_io_uring_enter, r->fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0) {
        return -errno;
    }
    unsigned *head = (unsigned *)(r->cq + r->p.cq_off.head);
    struct io_uring_cqe *cqes = (struct io_uring_cqe *)(r->cq + r->p.cq_off.cqes);
    unsigned cq_mask = *(unsigned *)(r->cq + r->p.cq_off.ring_mask);
    int res = cqes[*head & cq_mask].res;
    __atomic_store_n(head, *head + 1, __ATOMIC_RELEASE);
    return res;
}

/* Submits `sqe` on a fresh ring and returns its completion's result (-errno on failure). */
static int submit_one(const struct io_uring_sqe *sqe) {
    struct ring r;
    int res = ring_open(&r);
    if (res == 0) {
        res = ring_submit(&r, sqe);
    }
    if (r.fd >= 0) {
        close(r.fd);
    }
    return res;
}

/*
 * Opens PATH for appending into a fixed-file slot of a ring (never into the process's file
 * table) and writes TEXT through that slot: no open and no write syscall. `file_index` is the
 * slot + 1, or IORING_FILE_INDEX_ALLOC to let the kernel choose one.
 */
static int fixed_append(const char *path, const char *text, unsigned file_index) {
    struct ring r;
    int res = ring_open(&r);
    if (res < 0) {
        return res;
    }
    int sparse[4] = {-1, -1, -1, -1};
    if (syscall(__NR_io_uring_register, r.fd, IORING_REGISTER_FILES, sparse, 4) < 0) {
        return -errno;
    }
    struct io_uring_sqe sqe;
    memset(&sqe, 0, sizeof sqe);
    sqe.opcode = IORING_OP_OPENAT;
    sqe.fd = AT_FDCWD;
    sqe.addr = (uint64_t)(uintptr_t)path;
    sqe.open_flags = O_WRONLY | O_APPEND;
    sqe.file_index = file_index;
    res = ring_submit(&r, &sqe);
    if (res < 0) {
        return res;
    }
    unsigned slot = file_index == IORING_FILE_INDEX_ALLOC ? (unsigned)res : file_index - 1;
    memset(&sqe, 0, sizeof sqe);
    sqe.opcode = IORING_OP_WRITE;
    sqe.flags = IOSQE_FIXED_FILE;
    sqe.fd = (int)slot;
    sqe.addr = (uint64_t)(uintptr_t)text;
    sqe.len = (uint32_t)strlen(text);
    sqe.off = (uint64_t)-1;
    res = ring_submit(&r, &sqe);
    close(r.fd);
    if (res >= 0 && (size_t)res != strlen(text)) {
        return -EIO;
    }
    return res;
}

static int report(int res) {
    if (res < 0) {
        printf("error: %s\n", strerror(-res));
        return 1;
    }
    printf("ok\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        return usage();
    }
    const char *op = argv[1];
    struct io_uring_sqe sqe;
    memset(&sqe, 0, sizeof sqe);
    if (strcmp(op, "append") == 0 && argc == 4) {
        sqe.opcode = IORING_OP_OPENAT;
        sqe.fd = AT_FDCWD;
        sqe.addr = (uint64_t)(uintptr_t)argv[2];
        sqe.open_flags = O_WRONLY | O_APPEND;
        int fd = submit_one(&sqe);
        if (fd < 0) {
            return report(fd);
        }
        size_t len = strlen(argv[3]);
        int written = write(fd, argv[3], len) == (ssize_t)len ? 0 : -errno;
        close(fd);
        return report(written);
    }
    if (strcmp(op, "fixed-append") == 0 && argc == 4) {
        return report(fixed_append(argv[2], argv[3], 2));
    }
    if (strcmp(op, "fixed-alloc-append") == 0 && argc == 4) {
        return report(fixed_append(argv[2], argv[3], IORING_FILE_INDEX_ALLOC));
    }
    if (strcmp(op, "unlink") == 0 && argc == 3) {
        sqe.opcode = IORING_OP_UNLINKAT;
        sqe.fd = AT_FDCWD;
        sqe.addr = (uint64_t)(uintptr_t)argv[2];
        return report(submit_one(&sqe));
    }
    if ((strcmp(op, "rename") == 0 || strcmp(op, "link") == 0) && argc == 4) {
        sqe.opcode = strcmp(op, "rename") == 0 ? IORING_OP_RENAMEAT : IORING_OP_LINKAT;
        sqe.fd = AT_FDCWD;
        sqe.addr = (uint64_t)(uintptr_t)argv[2];
        sqe.len = (uint32_t)AT_FDCWD;
        sqe.addr2 = (uint64_t)(uintptr_t)argv[3];
        return report(submit_one(&sqe));
    }
    if (strcmp(op, "connect") == 0 && argc == 4) {
        int sock = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[3]))};
        if (sock < 0 || inet_pton(AF_INET, argv[2], &addr.sin_addr) != 1) {
            return report(-EINVAL);
        }
        sqe.opcode = IORING_OP_CONNECT;
        sqe.fd = sock;
        sqe.addr = (uint64_t)(uintptr_t)&addr;
        sqe.off = sizeof addr;
        return report(submit_one(&sqe));
    }
    return usage();
}
