/**
 * @file tests/fuzz/fuzz_net.c
 * @brief libFuzzer target: address parsing and formatting (common/net.c).
 *
 * The first input byte picks what is fuzzed:
 *
 * - parse (even): the rest is "HOST\0PORT". net_parse_addr() must accept
 *   exactly a literal IPv4/IPv6 address and a port of plain digits up to
 *   65535; an accepted address, formatted by net_format_addr() as
 *   "HOST:PORT" or "[HOST]:PORT", must parse back to the same bytes;
 * - format (odd): the rest is a raw socket address of any family and any
 *   bytes, formatted into buffers of every size up to #NET_ADDRSTRLEN:
 *   the text is always terminated inside the buffer, is a prefix of the
 *   whole text, and the whole text fits in #NET_ADDRSTRLEN.
 */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/**
 * @brief Stops the run: prints why, and aborts so libFuzzer keeps the input.
 * @param what the broken rule.
 */
static _Noreturn void
fail(const char *what)
{
    fprintf(stderr, "fuzz_net: %s\n", what);
    abort();
}

/**
 * @brief The SPEC's port: plain decimal digits, 0 to 65535.
 * @param text the PORT text.
 * @param port receives the value when valid.
 * @return 1 if valid, else 0.
 */
static int
port_ok(const char *text, unsigned *port)
{
    unsigned long v = 0;

    if (text[0] == '\0')
        return 0;
    for (const char *p = text; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        v = v * 10 + (unsigned long)(*p - '0');
        if (v > 65535)
            return 0;
    }
    *port = (unsigned)v;
    return 1;
}

/**
 * @brief Formats into every buffer size and checks each result.
 * @param sa   the address.
 * @param full receives the text formatted with room to spare.
 */
static void
check_format(const struct sockaddr *sa, char full[NET_ADDRSTRLEN * 2])
{
    char buf[NET_ADDRSTRLEN + 8];

    memset(full, 'X', (size_t)NET_ADDRSTRLEN * 2);
    if (net_format_addr(sa, full, (size_t)NET_ADDRSTRLEN * 2) != full)
        fail("net_format_addr() does not return its buffer");
    size_t len = strnlen(full, (size_t)NET_ADDRSTRLEN * 2);
    if (len >= NET_ADDRSTRLEN)
        fail("a formatted address does not fit in NET_ADDRSTRLEN");
    for (size_t size = 1; size <= NET_ADDRSTRLEN; size++) {
        memset(buf, 'X', sizeof buf);
        net_format_addr(sa, buf, size);
        size_t k = strnlen(buf, size);
        if (k == size)
            fail("a formatted address is not terminated inside the buffer");
        if (k != (len < size ? len : size - 1) || memcmp(buf, full, k) != 0)
            fail("a cut address is not a prefix of the whole one");
        if (buf[size] != 'X')
            fail("net_format_addr() wrote past the buffer");
    }
}

/**
 * @brief Parse mode: HOST and PORT from the input, then the round trip.
 * @param in input bytes.
 * @param n  their number.
 */
static void
fuzz_parse(const char *in, size_t n)
{
    char host[256], port[64];
    size_t k = strnlen(in, n);
    size_t hk = k < sizeof host - 1 ? k : sizeof host - 1;

    memcpy(host, in, hk);
    host[hk] = '\0';
    const char *rest = k < n ? in + k + 1 : in + n;
    size_t rn = (size_t)(in + n - rest);
    size_t pk = strnlen(rest, rn);
    if (pk > sizeof port - 1)
        pk = sizeof port - 1;
    memcpy(port, rest, pk);
    port[pk] = '\0';

    struct sockaddr_storage ss;
    socklen_t len = 0;
    unsigned char tmp[sizeof(struct in6_addr)];
    unsigned p;
    int v4 = inet_pton(AF_INET, host, tmp) == 1;
    int v6 = inet_pton(AF_INET6, host, tmp) == 1;
    int want = port_ok(port, &p) && (v4 || v6);

    errno = 0;
    int rc = net_parse_addr(host, port, &ss, &len);
    if ((rc == 0) != want)
        fail("net_parse_addr() and the SPEC disagree");
    if (rc != 0) { /* not rc < 0: a positive rc must fail here too */
        if (rc != -1 || errno != EINVAL)
            fail("a refusal is not -1 with errno EINVAL");
        return;
    }
    if (v4 ? (ss.ss_family != AF_INET || len != sizeof(struct sockaddr_in))
           : (ss.ss_family != AF_INET6 || len != sizeof(struct sockaddr_in6)))
        fail("the family or the length is wrong");
    unsigned got = ntohs(v4 ? ((struct sockaddr_in *)&ss)->sin_port
                            : ((struct sockaddr_in6 *)&ss)->sin6_port);
    if (got != p)
        fail("the port is not the one given");

    /* The round trip: "HOST:PORT" or "[HOST]:PORT" parses back. */
    char text[NET_ADDRSTRLEN * 2];
    check_format((struct sockaddr *)&ss, text);
    char *colon = strrchr(text, ':');
    if (colon == NULL)
        fail("a formatted address has no ':'");
    *colon = '\0';
    char *h = text;
    if (!v4) {
        size_t hl = strlen(h);
        if (hl < 2 || h[0] != '[' || h[hl - 1] != ']')
            fail("an IPv6 host is not in brackets");
        h[hl - 1] = '\0';
        h++;
    }
    struct sockaddr_storage back;
    socklen_t blen;
    if (net_parse_addr(h, colon + 1, &back, &blen) < 0 || blen != len ||
        memcmp(&back, &ss, len) != 0)
        fail("a formatted address does not parse back to itself");
}

/**
 * @brief Format mode: any bytes as a socket address.
 * @param in input bytes.
 * @param n  their number.
 */
static void
fuzz_format(const char *in, size_t n)
{
    struct sockaddr_storage ss;
    char text[NET_ADDRSTRLEN * 2];

    memset(&ss, 0, sizeof ss);
    memcpy(&ss, in, n < sizeof ss ? n : sizeof ss);
    if (n > 0 && (in[0] & 1)) /* make the two real families common */
        ss.ss_family = (in[0] & 2) ? AF_INET6 : AF_INET;
    check_format((struct sockaddr *)&ss, text);
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size);

/**
 * @brief libFuzzer's entry point.
 * @param in   the input (mode byte, then HOST\0PORT or address bytes).
 * @param size its length.
 * @return 0 (a broken rule aborts instead).
 */
int
LLVMFuzzerTestOneInput(const uint8_t *in, size_t size)
{
    if (size == 0)
        return 0;
    if (in[0] & 1)
        fuzz_format((const char *)in + 1, size - 1);
    else
        fuzz_parse((const char *)in + 1, size - 1);
    return 0;
}
