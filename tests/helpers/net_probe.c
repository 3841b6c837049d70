/*
 * sw-net-probe: the network calls busybox cannot make, for sealwatch's network tests (busybox nc
 * has no UDP mode). Part of the test image (/bin/sw-net-probe). Built static by
 * tests/src/image.rs: `gcc -static -O2 -o sw-net-probe net_probe.c`.
 *
 *   sw-net-probe udp ADDR PORT           one datagram with sendto() (unconnected socket)
 *   sw-net-probe udp-connect ADDR PORT   connect() a UDP socket, then send() one datagram
 *   sw-net-probe udp-bind PORT           bind a UDP socket to PORT on all addresses, wait 2 s
 *   sw-net-probe tcp ADDR PORT           connect() over TCP, then close
 *   sw-net-probe udp-recv PORT SECS      bind [::]:PORT (dual-stack), wait at most SECS for one
 *                                        datagram; prints `got N bytes from ADDR PORT`
 *   sw-net-probe udp-from SADDR SPORT ADDR PORT HEX
 *                                        one datagram of the bytes HEX (hex digits) from
 *                                        SADDR:SPORT to ADDR:PORT: a forged DNS answer from
 *                                        port 53, for the attacker tests
 *
 * ADDR is IPv4 or IPv6. Prints `ok` or `error: <strerror>` (e.g. "Operation not permitted" when
 * sealwatch blocks it) and exits 0 or 1; bad usage exits 111.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static int usage(void) {
    fprintf(stderr, "usage: sw-net-probe udp|udp-connect|tcp ADDR PORT | udp-bind PORT | "
                    "udp-recv PORT SECS | udp-from SADDR SPORT ADDR PORT HEX\n");
    return 111;
}

static int report(int rc) {
    if (rc < 0) {
        printf("error: %s\n", strerror(errno));
        return 1;
    }
    printf("ok\n");
    return 0;
}

/* Fills `ss` from ADDR and PORT; returns its length, or 0 when ADDR is not an address. */
static socklen_t address(const char *addr, const char *port, struct sockaddr_storage *ss) {
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, addr, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((unsigned short)atoi(port));
        return sizeof(*v4);
    }
    if (inet_pton(AF_INET6, addr, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((unsigned short)atoi(port));
        return sizeof(*v6);
    }
    return 0;
}

/* bind [::]:PORT, wait at most SECS seconds for one datagram and say where it came from. */
static int udp_recv(const char *port, const char *secs) {
    struct sockaddr_in6 any;
    memset(&any, 0, sizeof(any));
    any.sin6_family = AF_INET6;
    any.sin6_port = htons((unsigned short)atoi(port));
    int fd = socket(AF_INET6, SOCK_DGRAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&any, sizeof(any)) < 0) {
        return report(-1);
    }
    struct timeval tv = {.tv_sec = atoi(secs), .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    unsigned char buf[2048];
    struct sockaddr_in6 from;
    socklen_t from_len = sizeof(from);
    ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &from_len);
    if (n < 0) {
        return report(-1);
    }
    char text[INET6_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET6, &from.sin6_addr, text, sizeof(text));
    printf("got %zd bytes from %s %d\n", n, text, ntohs(from.sin6_port));
    return 0;
}

/* One datagram of the bytes HEX from SADDR:SPORT to ADDR:PORT. */
static int udp_from(char **argv) {
    struct sockaddr_storage src, dst;
    socklen_t src_len = address(argv[2], argv[3], &src);
    socklen_t dst_len = address(argv[4], argv[5], &dst);
    const char *hex = argv[6];
    size_t len = strlen(hex) / 2;
    unsigned char payload[1024];
    if (src_len == 0 || dst_len == 0 || len > sizeof(payload)) {
        return usage();
    }
    for (size_t i = 0; i < len; i++) {
        unsigned int byte;
        if (sscanf(hex + 2 * i, "%2x", &byte) != 1) {
            return usage();
        }
        payload[i] = (unsigned char)byte;
    }
    int fd = socket(src.ss_family, SOCK_DGRAM, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&src, src_len) < 0) {
        return report(-1);
    }
    return report((int)sendto(fd, payload, len, 0, (struct sockaddr *)&dst, dst_len));
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "udp-recv") == 0) {
        return udp_recv(argv[2], argv[3]);
    }
    if (argc == 7 && strcmp(argv[1], "udp-from") == 0) {
        return udp_from(argv);
    }
    if (argc == 3 && strcmp(argv[1], "udp-bind") == 0) {
        struct sockaddr_in6 any;
        memset(&any, 0, sizeof(any));
        any.sin6_family = AF_INET6;
        any.sin6_port = htons((unsigned short)atoi(argv[2]));
        int fd = socket(AF_INET6, SOCK_DGRAM, 0);
        int rc = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&any, sizeof(any));
        int status = report(rc);
        fflush(stdout);
        sleep(2);
        return status;
    }
    if (argc != 4) {
        return usage();
    }
    struct sockaddr_storage ss;
    socklen_t len = address(argv[2], argv[3], &ss);
    if (len == 0) {
        return usage();
    }
    const char *payload = "sealwatch";
    if (strcmp(argv[1], "udp") == 0) {
        int fd = socket(ss.ss_family, SOCK_DGRAM, 0);
        return report(fd < 0 ? -1
                             : (int)sendto(fd, payload, strlen(payload), 0,
                                           (struct sockaddr *)&ss, len));
    }
    if (strcmp(argv[1], "udp-connect") == 0) {
        int fd = socket(ss.ss_family, SOCK_DGRAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) < 0) {
            return report(-1);
        }
        return report((int)send(fd, payload, strlen(payload), 0));
    }
    if (strcmp(argv[1], "tcp") == 0) {
        int fd = socket(ss.ss_family, SOCK_STREAM, 0);
        int rc = fd < 0 ? -1 : connect(fd, (struct sockaddr *)&ss, len);
        int status = report(rc);
        if (fd >= 0) {
            close(fd);
        }
        return status;
    }
    return usage();
}
