/* pump.h: what the test servers that relay a connection share — copy bytes both ways between two
 * sockets until one side closes or both stay silent for 5 s. */
#ifndef PARROT_PUMP_H
#define PARROT_PUMP_H
#include <poll.h>
#include <unistd.h>

static void pump(int a, int b)
{
    struct pollfd pf[2] = {{.fd = a, .events = POLLIN}, {.fd = b, .events = POLLIN}};
    char buf[16384];
    for (;;) {
        if (poll(pf, 2, 5000) <= 0) return;
        for (int i = 0; i < 2; i++) {
            if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t n = read(pf[i].fd, buf, sizeof buf);
            if (n <= 0 || write(pf[1 - i].fd, buf, (size_t)n) != n) return;
        }
    }
}
#endif
