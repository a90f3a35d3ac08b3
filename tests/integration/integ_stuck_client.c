/* 10: a client that stops reading. It imports Gadget Zero and keeps sending
 * CMD_SUBMITs for 1 MiB IN URBs without reading a reply, until its socket
 * will take no more (the daemon stopped reading it: back-pressure, not
 * dropping). Meanwhile a second session keeps working; the stuck stream is
 * still intact; closing the stuck client frees the device. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "integ_util.h"

#define URB_LEN (1024 * 1024)
#define BATCH 64

static int count_sessions(daemon_t *d)
{
    char out[4096];
    if (!daemon_ctl_ok(d, "sessions", out, sizeof out)) {
        return -1;
    }
    int n = 0;
    for (const char *p = strchr(out, '\n'); p && p[1]; p = strchr(p + 1, '\n')) {
        n++;
    }
    return n;
}

/* Send CMD_SUBMITs without reading until the socket stays full for 500 ms.
 * Returns how many were sent whole, or -1 if the server never pushed back. */
static long flood(usbip_client_t *c, uint32_t *next_seq)
{
    const int fd = usbip_client_fd(c);
    const uint32_t devid = usbip_client_devid(c);
    uint8_t batch[BATCH * 48];
    size_t have = 0, sent = 0; /* bytes of batch ready / already sent */
    long whole = 0;
    const long limit = 4000000; /* ~190 MB of headers: the server must push back long before */
    uint64_t deadline = it_now_ms() + 60000;
    while (whole < limit && it_now_ms() < deadline) {
        if (sent == have) {
            for (int i = 0; i < BATCH; i++) {
                it_urb_header(batch + 48 * i, 1, (*next_seq)++, devid, 1, 1, 0x200, URB_LEN, 0,
                              0, 0, NULL);
            }
            have = sizeof batch;
            sent = 0;
        }
        ssize_t n = send(fd, batch + sent, have - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            size_t before = sent / 48;
            sent += (size_t)n;
            whole += (long)(sent / 48 - before);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            if (poll(&pfd, 1, 500) == 0) {
                return whole; /* full, and nobody drains it */
            }
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        it_fail(__FILE__, __LINE__, "send: %s", strerror(errno));
        return -1;
    }
    it_fail(__FILE__, __LINE__, "the daemon kept reading %ld CMD_SUBMITs: no back-pressure",
            whole);
    return -1;
}

static void client_stops_reading(daemon_t *d)
{
    usbip_client_t *good = it_import(d, BUSID_SERIAL, NULL);
    REQUIRE(good);
    REQUIRE(it_serial_echo_ok(good, 4096, 1));
    usbip_client_t *stuck = it_import(d, BUSID_ZERO, NULL);
    REQUIRE(stuck);

    uint32_t seq = 1;
    uint64_t start = it_now_ms();
    long sent = flood(stuck, &seq);
    REQUIRE(sent > 16);
    printf("  stuck after %ld CMD_SUBMITs of 1 MiB IN (%llu ms)\n", sent,
           (unsigned long long)(it_now_ms() - start));

    /* The daemon serves everyone else. */
    for (int i = 0; i < 5; i++) {
        CHECK(it_serial_echo_ok(good, 60000, (uint32_t)(10 + i)));
    }
    it_dev_t devs[8];
    int n = it_devlist(d, devs, 8);
    CHECK_EQ(n, 2);
    CHECK(!it_find_dev(devs, n, BUSID_ZERO));
    CHECK_EQ(count_sessions(d), 2);
    char out[4096];
    CHECK(daemon_ctl_ok(d, "list", out, sizeof out));
    CHECK_CONTAINS(out, "1-4 zero 0525:a4a0 imported");

    /* The stuck stream is intact: the first reply is RET_SUBMIT seqnum 1
     * with 1 MiB of pattern. */
    uint8_t hdr[48];
    REQUIRE_OK(stuck, usbip_client_recv_raw(stuck, hdr, 48));
    CHECK_EQ(it_be32(hdr + 0), 3);
    CHECK_EQ(it_be32(hdr + 4), 1);
    CHECK_EQ(it_be32(hdr + 0x14), 0);
    CHECK_EQ(it_be32(hdr + 0x18), URB_LEN);
    uint8_t *data = it_malloc(URB_LEN);
    REQUIRE(data);
    REQUIRE_OK(stuck, usbip_client_recv_raw(stuck, data, URB_LEN));
    CHECK_EQ(it_pattern_mismatch(data, URB_LEN, 512), -1);
    REQUIRE_OK(stuck, usbip_client_recv_raw(stuck, hdr, 48));
    CHECK_EQ(it_be32(hdr + 0), 3);
    CHECK_EQ(it_be32(hdr + 4), 2);

    /* Close it with replies unread: the daemon drops the session and the
     * device comes back. */
    it_close(stuck);
    CHECK(it_wait_listed(d, BUSID_ZERO, true, 5000));
    uint64_t deadline = it_now_ms() + 3000;
    int sessions;
    while ((sessions = count_sessions(d)) != 1 && it_now_ms() < deadline) {
        it_sleep_ms(20);
    }
    CHECK_EQ(sessions, 1);
    usbip_client_t *z = it_import(d, BUSID_ZERO, NULL);
    REQUIRE(z);
    CHECK(it_zero_in_ok(z, URB_LEN));
    CHECK(it_serial_echo_ok(good, 4096, 99));
}

/* The same with a tighter in-flight limit: --max-urbs 4. */
static void client_stops_reading_small_limits(daemon_t *d)
{
    client_stops_reading(d);
}

int main(int argc, char **argv)
{
    it_init(argc, argv, 170);
    it_run("client_stops_reading", client_stops_reading, NULL);
    static const char *const small[] = {"--max-urbs", "4", "--max-bytes-in-flight", "2M", NULL};
    it_run("client_stops_reading_small_limits", client_stops_reading_small_limits, small);
    return it_finish();
}
