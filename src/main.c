/* main: the `parrot` command line — subcommands and their options. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "target.h"

#define PARROT_VERSION "0.1.0"

static int cmd_target(int argc, char **argv)
{
    target_options o = {.host = "127.0.0.1", .port = 8080, .threads = 1};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--port") && i + 1 < argc) o.port = atoi(argv[++i]);
        else if (!strcmp(a, "--host") && i + 1 < argc) o.host = argv[++i];
        else if (!strcmp(a, "--threads") && i + 1 < argc) o.threads = atoi(argv[++i]);
        else if (!strcmp(a, "--tls")) o.tls = 1;
        else if (!strcmp(a, "--log") && i + 1 < argc) o.log_file = argv[++i];
        else if (!strcmp(a, "--quiet")) o.quiet = 1;
        else {
            fprintf(stderr, "parrot target: unknown option '%s' (see parrot help target)\n", a);
            return 2;
        }
    }
    return target_main(&o);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: parrot COMMAND ... (parrot --help)\n");
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "target")) return cmd_target(argc - 2, argv + 2);
    if (!strcmp(cmd, "--version")) {
        printf("parrot %s\n", PARROT_VERSION);
        return 0;
    }
    fprintf(stderr, "parrot: unknown command '%s' (parrot --help)\n", cmd);
    return 2;
}
