/* sealwatch bench load generator: `cargo xtask bench` compiles this with `gcc -O2 -static` (a
 * static binary runs unchanged inside the busybox test container) and drives it.
 *
 *   loadgen [-k K] WORKLOAD ARGS [-- WORKLOAD ARGS ...]
 *                           run workloads in order, each as K back-to-back chunks of N/K
 *                           iterations (default 1); print `result NAME ITERATIONS WALL_NS CPU_NS`
 *                           for every chunk: wall time (CLOCK_MONOTONIC) and CPU time, user plus
 *                           kernel, of this process and of the children it waited for (every
 *                           BPF program that runs in their context is in it; time spent waiting
 *                           for a CPU is not)
 *     open-ro PATH N        open(O_RDONLY) + close
 *     open-wo PATH N        open(O_WRONLY) + close of an existing file (nothing is written)
 *     open-create PATH N    open(O_WRONLY|O_CREAT|O_TRUNC) + close (a file the caller created)
 *     fork-exec PATH N      fork + execv(PATH) + waitpid, like a shell running a command
 *     tcp N                 socket + connect + accept + close on 127.0.0.1 (client side closes
 *                           with SO_LINGER 0: a reset, so no TIME_WAIT piles up across runs)
 *     getppid N             the getppid syscall (nobody traces it)
 *   loadgen spawn RATE N TAG  N times vfork + exec of this binary as `loadgen exit TAG-<i>`, paced
 *                           at RATE per second (0: as fast as possible); prints `t I NS` (the
 *                           CLOCK_REALTIME just before the i-th vfork) for every child, then
 *                           `spawned N NANOSECONDS`
 *   loadgen exit ...        exits 0 at once (the spawned child)
 *   loadgen tcp-until START END [RATE [MAX]]  the tcp loop from CLOCK_REALTIME START ns (it
 *                           sleeps until then, so generators started apart begin together) to END
 *                           ns or MAX iterations, as fast as it goes (RATE 0) or paced at RATE
 *                           iterations per second; prints
 *                           `storm ITERATIONS FIRST_NS LAST_NS PORT`: the real start and end of
 *                           its loop (CLOCK_REALTIME) and the port it listened on
 *   loadgen floor HOOK...   loads one empty program (`return 0`) per hook and attaches it: a
 *                           plain NAME is a raw tracepoint (BPF_PROG_TYPE_RAW_TRACEPOINT, the path
 *                           tp_btf programs take too), CATEGORY/NAME a classic tracepoint
 *                           (BPF_PROG_TYPE_TRACEPOINT on a perf event, as syscall tracepoints
 *                           are attached); prints `floor attached N` and keeps them attached
 *                           until stdin reaches EOF
 *
 * Each workload times only its own loop: process and container start-up is not
 * part of the figure. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CPU time of this process plus its waited-for children, in ns. */
static uint64_t cpu_ns(void) {
    struct rusage children;
    getrusage(RUSAGE_CHILDREN, &children);
    uint64_t kids = ((uint64_t)children.ru_utime.tv_sec + (uint64_t)children.ru_stime.tv_sec) *
                        1000000000ull +
                    ((uint64_t)children.ru_utime.tv_usec + (uint64_t)children.ru_stime.tv_usec) *
                        1000ull;
    return now_ns(CLOCK_PROCESS_CPUTIME_ID) + kids;
}

static void die(const char *what) {
    fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
    exit(1);
}

static long count_arg(const char *text) {
    char *end;
    long n = strtol(text, &end, 10);
    if (*end != '\0' || n < 0) {
        fprintf(stderr, "loadgen: not a count: %s\n", text);
        exit(2);
    }
    return n;
}

static void open_loop(const char *path, int flags, long n) {
    for (long i = 0; i < n; i++) {
        int fd = open(path, flags, 0644);
        if (fd < 0) die(path);
        close(fd);
    }
}

static void fork_exec_loop(const char *path, long n) {
    char *const argv[] = {(char *)path, NULL};
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) die("fork");
        if (pid == 0) {
            execv(path, argv);
            _exit(127);
        }
        int status;
        if (waitpid(pid, &status, 0) < 0) die("waitpid");
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "loadgen: %s failed (status %d)\n", path, status);
            exit(1);
        }
    }
}

/* A listening socket on 127.0.0.1 (an ephemeral port); its address in `addr`. */
static int tcp_listener(struct sockaddr_in *addr) {
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    if (ls < 0) die("socket");
    *addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof *addr;
    if (bind(ls, (struct sockaddr *)addr, sizeof *addr) < 0) die("bind");
    if (listen(ls, 128) < 0) die("listen");
    if (getsockname(ls, (struct sockaddr *)addr, &len) < 0) die("getsockname");
    return ls;
}

/* One iteration: socket + connect + accept + close (the client resets: no TIME_WAIT). */
static void tcp_once(int ls, const struct sockaddr_in *addr) {
    static const struct linger reset = {.l_onoff = 1, .l_linger = 0};
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0) die("socket");
    if (connect(c, (const struct sockaddr *)addr, sizeof *addr) < 0) die("connect");
    int a = accept(ls, NULL, NULL);
    if (a < 0) die("accept");
    setsockopt(c, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    close(c);
    close(a);
}

static void tcp_loop(long n) {
    struct sockaddr_in addr;
    int ls = tcp_listener(&addr);
    for (long i = 0; i < n; i++) tcp_once(ls, &addr);
    close(ls);
}

static int tcp_until(uint64_t start, uint64_t end, long rate, long max) {
    struct sockaddr_in addr;
    int ls = tcp_listener(&addr);
    struct timespec ts = {.tv_sec = (time_t)(start / 1000000000ull),
                          .tv_nsec = (long)(start % 1000000000ull)};
    while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
    uint64_t first = now_ns(CLOCK_REALTIME);
    uint64_t last = first;
    uint64_t period = rate > 0 ? 1000000000ull / (uint64_t)rate : 0;
    long n = 0;
    while (last < end && (max <= 0 || n < max)) {
        if (period) {
            uint64_t due = first + (uint64_t)n * period;
            struct timespec at = {.tv_sec = (time_t)(due / 1000000000ull),
                                  .tv_nsec = (long)(due % 1000000000ull)};
            while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &at, NULL) == EINTR) {
            }
        }
        tcp_once(ls, &addr);
        n++;
        last = now_ns(CLOCK_REALTIME);
    }
    close(ls);
    printf("storm %ld %llu %llu %u\n", n, (unsigned long long)first, (unsigned long long)last,
           (unsigned)ntohs(addr.sin_port));
    return 0;
}

static void getppid_loop(long n) {
    for (long i = 0; i < n; i++) syscall(SYS_getppid);
}

/* Runs `n` iterations of workload `name` (arguments in argv[1..]). */
static void iterate(const char *name, char **argv, long n) {
    if (strcmp(name, "open-ro") == 0) {
        open_loop(argv[1], O_RDONLY | O_CLOEXEC, n);
    } else if (strcmp(name, "open-wo") == 0) {
        open_loop(argv[1], O_WRONLY | O_CLOEXEC, n);
    } else if (strcmp(name, "open-create") == 0) {
        open_loop(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, n);
    } else if (strcmp(name, "fork-exec") == 0) {
        fork_exec_loop(argv[1], n);
    } else if (strcmp(name, "tcp") == 0) {
        tcp_loop(n);
    } else {
        getppid_loop(n);
    }
}

/* Runs one workload starting at argv[0] as `chunks` timed chunks; returns the arguments used. */
static int workload(int argc, char **argv, long chunks) {
    const char *name = argv[0];
    int with_path = strcmp(name, "open-ro") == 0 || strcmp(name, "open-wo") == 0 ||
                    strcmp(name, "open-create") == 0 || strcmp(name, "fork-exec") == 0;
    int without_path = strcmp(name, "tcp") == 0 || strcmp(name, "getppid") == 0;
    int used = with_path ? 3 : 2;
    if ((!with_path && !without_path) || argc < used) {
        fprintf(stderr, "loadgen: unknown workload or missing arguments: %s\n", name);
        exit(2);
    }
    long n = count_arg(argv[used - 1]);
    long per_chunk = n / chunks > 0 ? n / chunks : 1;
    for (long c = 0; c < chunks; c++) {
        uint64_t cpu_start = cpu_ns();
        uint64_t start = now_ns(CLOCK_MONOTONIC);
        iterate(name, argv, per_chunk);
        uint64_t took = now_ns(CLOCK_MONOTONIC) - start;
        uint64_t cpu = cpu_ns() - cpu_start;
        printf("result %s %ld %llu %llu\n", name, per_chunk, (unsigned long long)took,
               (unsigned long long)cpu);
    }
    fflush(stdout);
    return used;
}

static int spawn(long rate, long n, const char *tag) {
    uint64_t *stamps = calloc((size_t)n + 1, sizeof *stamps);
    if (!stamps) die("calloc");
    char marker[96];
    char *const envp[] = {NULL};
    uint64_t period = rate > 0 ? 1000000000ull / (uint64_t)rate : 0;
    uint64_t start = now_ns(CLOCK_MONOTONIC);
    for (long i = 0; i < n; i++) {
        if (period) {
            uint64_t due = start + (uint64_t)i * period;
            struct timespec ts = {.tv_sec = (time_t)(due / 1000000000ull),
                                  .tv_nsec = (long)(due % 1000000000ull)};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
            }
        }
        snprintf(marker, sizeof marker, "%s-%ld", tag, i);
        char *const argv[] = {"loadgen", "exit", marker, NULL};
        stamps[i] = now_ns(CLOCK_REALTIME);
        pid_t pid = vfork();
        if (pid < 0) die("vfork");
        if (pid == 0) {
            execve("/proc/self/exe", argv, envp);
            _exit(127);
        }
        /* Reap finished children without waiting for the one just started. */
        while (waitpid(-1, NULL, WNOHANG) > 0) {
        }
    }
    uint64_t took = now_ns(CLOCK_MONOTONIC) - start;
    while (waitpid(-1, NULL, 0) > 0) {
    }
    for (long i = 0; i < n; i++) printf("t %ld %llu\n", i, (unsigned long long)stamps[i]);
    printf("spawned %ld %llu\n", n, (unsigned long long)took);
    return 0;
}

static int load_empty(int prog_type) {
    struct bpf_insn insns[] = {
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0},
        {.code = BPF_JMP | BPF_EXIT},
    };
    union bpf_attr load;
    memset(&load, 0, sizeof load);
    load.prog_type = (uint32_t)prog_type;
    load.insns = (uint64_t)(uintptr_t)insns;
    load.insn_cnt = 2;
    load.license = (uint64_t)(uintptr_t) "GPL";
    int prog = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof load);
    if (prog < 0) die("BPF_PROG_LOAD");
    return prog;
}

/* The perf event id of tracepoint CATEGORY/NAME, from tracefs. */
static long tracepoint_id(const char *hook) {
    const char *roots[] = {"/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events"};
    for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s/id", roots[i], hook);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        long id = -1;
        if (fscanf(f, "%ld", &id) != 1) id = -1;
        fclose(f);
        if (id >= 0) return id;
    }
    fprintf(stderr, "loadgen: no tracepoint %s in tracefs (is it mounted?)\n", hook);
    exit(1);
}

static void attach_empty(const char *hook) {
    if (!strchr(hook, '/')) {
        int prog = load_empty(BPF_PROG_TYPE_RAW_TRACEPOINT);
        union bpf_attr open;
        memset(&open, 0, sizeof open);
        open.raw_tracepoint.name = (uint64_t)(uintptr_t)hook;
        open.raw_tracepoint.prog_fd = (uint32_t)prog;
        if (syscall(SYS_bpf, BPF_RAW_TRACEPOINT_OPEN, &open, sizeof open) < 0) die(hook);
        return;
    }
    int prog = load_empty(BPF_PROG_TYPE_TRACEPOINT);
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.type = PERF_TYPE_TRACEPOINT;
    attr.size = sizeof attr;
    attr.config = (uint64_t)tracepoint_id(hook);
    attr.sample_period = 1;
    attr.wakeup_events = 1;
    /* One event (cpu 0, any task) is enough: the program hangs off the tracepoint itself. */
    int pfd = (int)syscall(SYS_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
    if (pfd < 0) die(hook);
    if (ioctl(pfd, PERF_EVENT_IOC_SET_BPF, prog) < 0) die("PERF_EVENT_IOC_SET_BPF");
    if (ioctl(pfd, PERF_EVENT_IOC_ENABLE, 0) < 0) die("PERF_EVENT_IOC_ENABLE");
}

static int floor_progs(int count, char **hooks) {
    for (int i = 0; i < count; i++) attach_empty(hooks[i]);
    printf("floor attached %d\n", count);
    fflush(stdout);
    char buf[256];
    while (read(0, buf, sizeof buf) > 0) {
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: see the comment at the top of loadgen.c\n");
        return 2;
    }
    if (strcmp(argv[1], "exit") == 0) _exit(0);
    if (strcmp(argv[1], "floor") == 0) return floor_progs(argc - 2, argv + 2);
    if (strcmp(argv[1], "spawn") == 0) {
        if (argc != 5) {
            fprintf(stderr, "usage: loadgen spawn RATE N TAG\n");
            return 2;
        }
        return spawn(count_arg(argv[2]), count_arg(argv[3]), argv[4]);
    }
    if (strcmp(argv[1], "tcp-until") == 0) {
        if (argc < 4 || argc > 6) {
            fprintf(stderr, "usage: loadgen tcp-until START_NS END_NS [RATE [MAX]]\n");
            return 2;
        }
        return tcp_until((uint64_t)strtoull(argv[2], NULL, 10), (uint64_t)strtoull(argv[3], NULL, 10),
                         argc >= 5 ? count_arg(argv[4]) : 0, argc == 6 ? count_arg(argv[5]) : 0);
    }
    int i = 1;
    long chunks = 1;
    if (argc > 3 && strcmp(argv[1], "-k") == 0) {
        chunks = count_arg(argv[2]);
        if (chunks < 1) chunks = 1;
        i = 3;
    }
    while (i < argc) {
        i += workload(argc - i, argv + i, chunks);
        if (i < argc) {
            if (strcmp(argv[i], "--") != 0) {
                fprintf(stderr, "loadgen: expected -- between workloads, got %s\n", argv[i]);
                return 2;
            }
            i++;
        }
    }
    return 0;
}
