/* forge.c: writes a cache or shared-store value (cache.h VALUE: the 64-byte
 * header, a valid checksum, then the data) around any bytes, for the tests
 * that feed forged entries to the shared store (tests/t_redis.sh).
 *
 *   forge OUT DATA KIND WIDTH HEIGHT
 *
 * KIND is the header's kind number (1 JPEG, 2 PNG, 256 a style vector).
 * Exit status 0, or 1 with a message. */
#include "cache.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    uint8_t hdr[SF_CACHE_HDR_LEN], *d;
    uint64_t kind, w, h;
    size_t len;
    FILE *f;
    int rc;

    if (argc != 6 || sf_parse_u64(argv[3], 0, UINT32_MAX, &kind) || sf_parse_u64(argv[4], 0, UINT32_MAX, &w) ||
        sf_parse_u64(argv[5], 0, UINT32_MAX, &h)) {
        fprintf(stderr, "usage: forge OUT DATA KIND WIDTH HEIGHT\n");
        return 1;
    }
    if ((rc = sf_read_file(argv[2], 1 << 30, &d, &len))) {
        fprintf(stderr, "forge: %s: %s\n", argv[2], strerror(-rc));
        return 1;
    }
    sf_entry_header(hdr, d, len, (uint32_t)w, (uint32_t)h, (uint32_t)kind, sf_now());
    if (!(f = fopen(argv[1], "wb")) || fwrite(hdr, 1, sizeof hdr, f) != sizeof hdr || fwrite(d, 1, len, f) != len ||
        fclose(f)) {
        fprintf(stderr, "forge: %s: cannot write\n", argv[1]);
        free(d);
        return 1;
    }
    free(d);
    return 0;
}
